"""The bill before and after: a dry run sends nothing and estimates what the real run is billed; prices, cached
prefixes, batch discounts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.core.errors import ConfigError
from harness.grading.costs import Price, load_prices
from harness.grading.grade import GradeSpec, grade
from harness.io.pairs import load_pairs, write_pairs
from tests.helpers import SAMPLE, endpoint_at, pairs_file, stats


@pytest.mark.slow
def test_dry_run_sends_nothing_and_estimates_the_billed_tokens(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = write_pairs(load_pairs(SAMPLE), tmp_path / "d.jsonl")
    (tmp_path / "harness.toml").write_text(
        "[prices.harness-baseline]\ninput = 2.0\noutput = 8.0\nbatch_discount = 0.5\n"
    )
    config = ["--config", str(tmp_path / "harness.toml")]
    before = stats(server)["requests"]
    dry = cli.invoke(
        app,
        [
            "grade",
            str(data),
            "--base-url",
            server.base_url,
            "--out",
            str(tmp_path / "run"),
            "--dry-run",
            "--json",
            *config,
        ],
    )
    assert dry.exit_code == 0, dry.output
    found = json.loads(dry.output)
    assert stats(server)["requests"] == before and not (tmp_path / "run").exists()  # nothing sent, nothing written
    assert found["items"] == 2 * len(load_pairs(SAMPLE))
    # one prompt, 3 models
    assert found["requests"] + found["duplicate_requests"] == found["items"] and found["duplicate_requests"] > 0
    assert found["cost_prompt"] == pytest.approx(found["prompt_tokens_estimate"] * 2.0 / 1e6)
    batch = json.loads(cli.invoke(app, ["grade", str(data), "--dry-run", "--batch", "--json", *config]).output)
    # the configured discount
    assert batch["batch"] is True and batch["cost_prompt"] == pytest.approx(found["cost_prompt"] * 0.5)
    unique = json.loads(cli.invoke(app, ["grade", str(data), "--dry-run", "--json", "--no-cache", *config]).output)
    assert unique["requests"] == unique["items"]  # without the cache nothing is shared
    real = cli.invoke(app, ["grade", str(data), "--base-url", server.base_url, "--out", str(tmp_path / "run"), *config])
    assert real.exit_code == 0, real.output
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    billed = manifest["tokens"]["billed_prompt_tokens"]
    assert abs(found["prompt_tokens_estimate"] - billed) / billed < 0.10  # within 10 % of the endpoint's reported usage
    expected = (billed * 2.0 + manifest["tokens"]["billed_completion_tokens"] * 8.0) / 1e6
    assert manifest["cost"]["billed"] == pytest.approx(expected, rel=1e-6)
    assert "billed cost" in real.output


def test_batched_dry_run_counts_fewer_requests(cli: CliRunner, tmp_path: Path) -> None:
    data = write_pairs(load_pairs(SAMPLE).head(30), tmp_path / "d.jsonl")
    result = cli.invoke(
        app, ["grade", str(data), "--dry-run", "--json", "--items-per-request", "8", "--target", "prompt"]
    )
    found = json.loads(result.output)
    assert found["items"] == 30 and found["requests"] == 4  # 8 + 8 + 8 + 6
    plain = cli.invoke(
        app, ["grade", str(data), "--dry-run", "--target", "prompt", "--price-input", "1", "--price-output", "4"]
    )
    assert "dry run (nothing sent)" in plain.output and "price: prompt ≈" in plain.output


def test_prices_are_validated(cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "harness.toml").write_text('[prices.m]\ninput = 1.0\n')
    with pytest.raises(ConfigError, match=r"\[prices.m\] needs input and output"):
        load_prices(tmp_path / "harness.toml")
    with pytest.raises(ConfigError, match="price_input=-1"):
        Price(-1, 2)
    assert Price(2.0, 8.0, cached_input=0.5).of(1_000_000, 500_000, cached_prompt_tokens=200_000) == pytest.approx(
        1.6 + 0.1 + 4.0
    )
    result = cli.invoke(app, ["grade", "x.jsonl", "--dry-run", "--price-input", "1"])
    assert result.exit_code == 2 and "--price-input and --price-output go together" in result.output


def test_the_repeated_prefix_is_reported_and_priced_as_cached(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = write_pairs(load_pairs(SAMPLE).head(20), tmp_path / "d.jsonl")
    (tmp_path / "harness.toml").write_text('[prices.harness-baseline]\ninput = 2.0\ncached_input = 0.5\noutput = 8.0\n')
    result = cli.invoke(
        app,
        [
            "grade",
            str(data),
            "--base-url",
            server.base_url,
            "--out",
            str(tmp_path / "run"),
            "--no-cache",
            "--config",
            str(tmp_path / "harness.toml"),
        ],
        env={"COLUMNS": "150"},
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    tokens = manifest["tokens"]
    cached, prompt, completion = (
        tokens["billed_prompt_tokens_prefix_cached"],
        tokens["billed_prompt_tokens"],
        tokens["billed_completion_tokens"],
    )
    assert 0 < cached < prompt  # the rubric repeats; the first request of each side paid it in full
    assert manifest["cost"]["billed"] == pytest.approx(
        ((prompt - cached) * 2.0 + cached * 0.5 + completion * 8.0) / 1e6
    )
    assert "provider prompt cache" in result.output and f"{cached:,} of {prompt:,}" in result.output


def test_batch_runs_are_priced_with_the_batch_discount(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harness.grading.batch_api import BatchOptions
    from harness.grading.costs import billed_cost
    from harness.grading.grade import GradeSpec, grade
    from tests.helpers import endpoint_for

    data = write_pairs(load_pairs(SAMPLE).head(6), tmp_path / "d.jsonl")
    price = Price(2.0, 8.0, batch_discount=0.5)
    result = grade(data, GradeSpec(), endpoint_for(server), run_dir=tmp_path / "run", price=price,
                   batch=BatchOptions(poll_initial_s=0.05, poll_max_s=0.2))
    full = billed_cost(result.manifest["tokens"], Price(2.0, 8.0))  # the same tokens without the discount
    assert result.manifest["batch"] is True and result.manifest["cost"]["batch_discount"] == 0.5
    assert result.manifest["cost"]["billed"] == pytest.approx(full / 2, rel=1e-5) and full > 0

    from harness.report.sections import run_section
    from harness.results.manifest import Manifest

    section = run_section(Manifest.from_json(result.manifest))
    billed_line = next(p for p in section.paragraphs if p.startswith("Billed cost"))
    assert "Batch API discount ×0.5" in billed_line and f"{result.manifest['cost']['billed']:,.4f}" in billed_line


def test_a_run_graded_partly_by_batch_is_priced_item_by_item(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harness.grading.batch_api import BatchOptions
    from harness.grading.endpoint import EndpointConfig
    from harness.grading.grade import GradeSpec, grade
    from harness.io.runs import iter_labels

    data = write_pairs(load_pairs(SAMPLE).head(10), tmp_path / "d.jsonl")
    price = Price(2.0, 8.0, batch_discount=0.5)
    spec = GradeSpec(targets=("prompt",))
    grade(
        data,
        spec,
        EndpointConfig(base_url=make_server(batch_fault="error_lines").base_url),
        run_dir=tmp_path / "run",
        price=price,
        batch=BatchOptions(poll_initial_s=0.05, poll_max_s=0.2),
    )
    retried = grade(data, spec, EndpointConfig(base_url=make_server().base_url), run_dir=tmp_path / "run", price=price,
                    retry_statuses=("failed",), same_grader=True)  # the failed lines, synchronously
    records = [r for r in iter_labels(tmp_path / "run") if not r["cached"]]
    by_batch = {
        flag: sum(
            (r["prompt_tokens"] * 2.0 + r["completion_tokens"] * 8.0) / 1e6 for r in records if r["batch_api"] is flag
        )
        for flag in (True, False)
    }
    assert by_batch[True] > 0 and by_batch[False] > 0  # both ways billed something
    assert retried.manifest["cost"]["billed"] == pytest.approx(0.5 * by_batch[True] + by_batch[False], abs=1e-6)
    assert retried.manifest["cost"]["batch_discount"] == 0.5


def test_retried_records_keep_their_billed_tokens(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    faulty = make_server(fail_rate=0.4, fail_modes=("garbage",), seed=3)
    data = pairs_file(tmp_path)
    first = grade(data, GradeSpec(), endpoint_at(faulty.base_url), run_dir=tmp_path / "run")
    assert first.manifest["counts"]["unparsed"] > 0
    billed = first.manifest["tokens"]["billed_prompt_tokens"]
    again = grade(
        data, GradeSpec(), endpoint_at(faulty.base_url), run_dir=tmp_path / "run", retry_statuses=("unparsed",)
    )
    assert again.manifest["superseded"] == first.manifest["counts"]["unparsed"]
    assert again.manifest["tokens"]["billed_prompt_tokens"] > billed  # the first attempts were billed too
