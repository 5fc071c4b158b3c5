"""Stability reads repeats of one job only: settings that differ, or a repeat served again by the cache, are refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from tests.helpers import RUNNER, head_pairs, write_run


def _stability(*folders: Path, extra: tuple[str, ...] = ()) -> Any:
    out = str(folders[0].parent / "s.json")
    return RUNNER.invoke(app, ["stability", *map(str, folders), "--n-boot", "200", "-o", out, *extra])


@pytest.mark.parametrize(("change", "named"), [
    ({"temperature": 0.0}, "temperature: a 0.7, b 0.0"),
    ({"json_mode": False}, "response format: a 'json_object', b 'text'"),
    ({"max_tokens": 50}, "max_tokens: a 400, b 50"),
])
def test_repeats_of_different_settings_are_refused_naming_what_differs(tmp_path: Path, change: dict[str, Any],
                                                                        named: str) -> None:
    a = write_run(tmp_path / "a", [0, 1, 2, 0] * 10, clusters=20)
    b = write_run(tmp_path / "b", [0, 1, 2, 0] * 10, clusters=20, params={**change, "seed": 2})
    result = _stability(a, b)
    assert result.exit_code == 2 and "not one job" in result.output
    assert named in " ".join(result.output.split()), result.output
    assert not (tmp_path / "s.json").exists()


def test_another_model_is_refused_by_name(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", [0, 1] * 20, clusters=20)
    b = write_run(tmp_path / "b", [0, 1] * 20, clusters=20, params={"seed": 2}, model="other")
    result = _stability(a, b)
    assert result.exit_code == 2 and "model: a 'sim', b 'other'" in " ".join(result.output.split())


def test_a_repeat_served_again_by_the_cache_is_refused(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", [0, 1, 2, 0] * 10, clusters=20)
    copy = write_run(tmp_path / "copy", [0, 1, 2, 0] * 10, clusters=20, cached=40)  # same seed, every answer cached
    result = _stability(a, copy)
    assert result.exit_code == 2 and "copy is a again" in " ".join(result.output.split())
    assert "agree by construction" in " ".join(result.output.split())


def test_a_repeat_partly_from_the_cache_is_named_in_a_warning(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", [0, 1, 2, 0] * 10, clusters=20)
    b = write_run(tmp_path / "b", [0, 1, 1, 0] * 10, clusters=20, params={"seed": 2}, cached=12)
    result = _stability(a, b, extra=("--json",))
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["from_cache"] == [0, 12]
    assert any(w.startswith("b: 12 of 40 answers came from the completion cache") for w in found["warnings"])
    text = _stability(a, b).output
    assert "b: 12 of 40 answers came from the completion cache" in " ".join(text.split())


def _repeats(server, tmp_path: Path, temperature: str, name: str) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path / name
    done = RUNNER.invoke(
        app,
        [
            "grade",
            str(head_pairs(tmp_path)),
            "--base-url",
            server.base_url,
            "--temperature",
            temperature,
            "--repeats",
            "3",
            "-o",
            str(folder),
            "--quiet",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
    )
    assert done.exit_code == 0, done.output
    return folder


@pytest.mark.slow
def test_repeats_at_temperature_move_some_verdicts_and_at_zero_none(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    warm = _repeats(server, tmp_path, "0.7", "warm")
    seeds = [json.loads((warm / f"repeat-{k}" / "manifest.json").read_text())["params"]["seed"] for k in (1, 2, 3)]
    assert seeds[1] == seeds[0] + 1 and seeds[2] == seeds[0] + 2  # each draw its own seed
    result = cli.invoke(app, ["stability", str(warm), "--n-boot", "300", "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found == json.loads((warm / "stability.json").read_text())
    response = next(s for s in found["scopes"] if s["side"] == "response" and s["scope"] == "any")
    assert 0 < response["changed"] < 1
    lo, hi = response["changed_ci"]
    assert 0 <= lo < response["changed"] < hi <= 1
    # the changed share recomputed by hand from the three label files
    verdicts = []
    for k in (1, 2, 3):
        records = [json.loads(line) for line in (warm / f"repeat-{k}" / "labels.jsonl").read_text().splitlines()]
        verdicts.append(
            {r["id"]: max(r["severity"].values()) for r in records if r["target"] == "response" and r["status"] == "ok"}
        )
    shared = set(verdicts[0]) & set(verdicts[1]) & set(verdicts[2])
    changed = sum(len({v[i] for v in verdicts}) > 1 for i in shared) / len(shared)
    assert response["changed"] == pytest.approx(changed) and response["n_items"] == len(shared)
    assert len(found["asymmetry"]) == 3
    cold = _repeats(server, tmp_path, "0", "cold")
    still = json.loads(cli.invoke(app, ["stability", str(cold), "--n-boot", "200", "--json"]).stdout)
    assert all(s["changed"] == 0.0 for s in still["scopes"])
    assert any("temperature 0" in w for w in still["warnings"])
    text = cli.invoke(app, ["stability", str(warm), "--n-boot", "0"]).output
    assert "of verdicts" in text and "Verdicts across repeats" in text
