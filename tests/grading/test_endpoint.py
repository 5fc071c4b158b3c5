"""An endpoint's config is checked when made: credentials in the URL are refused without echo."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from harness.cli.app import app
from tests.helpers import assert_no_traceback, one_pair

SECRET_KEY = "sk-test-HARDENING-0123456789"


def test_credentials_in_the_url_are_refused_without_echo(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(app, ["grade", str(one_pair(tmp_path)), "--base-url", f"http://user:{SECRET_KEY}@127.0.0.1:9/v1",
                                 "--out", str(tmp_path / "run")])
    assert_no_traceback(result)
    assert (
        result.exit_code == 2 and "--base-url carries credentials" in result.output and SECRET_KEY not in result.output
    )
