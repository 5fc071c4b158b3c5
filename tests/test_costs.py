"""The bill before and after: a dry run sends nothing and estimates what the real run is billed."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from harness.cli.app import app
from harness.io.pairs import load_pairs, write_pairs
from tests.helpers import SAMPLE


def test_compare_shows_cost_per_item_and_per_kappa_point(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = write_pairs(load_pairs(SAMPLE).head(30), tmp_path / "d.jsonl")
    for model in ("harness-baseline", "harness-small"):
        result = cli.invoke(app, ["grade", str(data), "--base-url", server.base_url, "--model", model, "--out", str(tmp_path / model),
                                     "--no-cache", "--price-input", "2", "--price-output", "8"])
        assert result.exit_code == 0, result.output
    result = cli.invoke(app, ["compare", str(tmp_path / "harness-baseline"), str(tmp_path / "harness-small"), "--human", str(data),
                                 "--n-boot", "50", "-o", str(tmp_path / "cmp.json")], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    runs = json.loads((tmp_path / "cmp.json").read_text())["runs"]
    manifest = json.loads((tmp_path / "harness-small" / "manifest.json").read_text())
    assert runs["harness-small"]["cost"] == manifest["cost"]["billed"] > 0 and runs["harness-small"]["items_graded"] == 60
    assert "Cost" in result.output and "per graded item" in result.output
