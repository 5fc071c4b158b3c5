"""Every grading setting declared once: one precedence (flag > environment > settings file > default) for a grade and a
study, the same bounds for the flags, the study, the environment and the library's own objects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.core.errors import ConfigError
from harness.grading.endpoint import EndpointConfig, endpoint_of
from harness.grading.jobs import GradeSpec, spec_of
from harness.grading.settings import EndpointSettings, JobSettings, resolve
from tests.helpers import SAMPLE, few_pairs


def test_one_precedence_flag_environment_file_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "harness.toml"
    config.write_text('base_url = "http://file:1/v1"\nconcurrency = 3\ntimeout_s = 9\nmodel = "from-file"\n')
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env:2/v1")
    monkeypatch.setenv("HARNESS_CONCURRENCY", "5")
    monkeypatch.setenv("HARNESS_LOGPROBS", "true")
    found = resolve({"concurrency": 7}, config=config)
    assert found.endpoint.base_url == "http://env:2/v1"  # environment over file
    assert found.endpoint.concurrency == 7  # flag over environment
    assert found.endpoint.timeout_s == 9.0 and found.job.model == "from-file"  # file over default
    assert found.job.logprobs is True and found.endpoint.max_attempts == 6  # environment's text typed; a default
    where = found.sources
    assert (where["concurrency"], where["base_url"], where["timeout_s"], where["max_attempts"]) == (
        "flag", "environment", "settings file", "default")
    monkeypatch.setenv("HARNESS_CONCURRENCY", "many")
    with pytest.raises(ConfigError, match="HARNESS_CONCURRENCY='many': expected int"):
        resolve({}, config=config)
    monkeypatch.setenv("HARNESS_CONCURRENCY", "0")  # typed, then bounded like a flag, naming the variable
    with pytest.raises(ConfigError, match="HARNESS_CONCURRENCY 0: expected at least 1"):
        resolve({}, config=config)


def test_the_library_objects_take_the_declared_bounds() -> None:
    """A bound lives on the settings field; EndpointConfig and GradeSpec are checked against the same one."""
    for kwargs, said in (({"concurrency": 0}, "concurrency=0: expected at least 1"),
                         ({"timeout_s": 3601.0}, "timeout_s=3601.0: expected at most 3600")):
        with pytest.raises(ConfigError, match=said):
            EndpointConfig(base_url="http://127.0.0.1:1/v1", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="temperature=2.5: expected at most 2"):
        GradeSpec(temperature=2.5)
    with pytest.raises(ConfigError, match="response_format='xml': expected one of"):
        GradeSpec(response_format="xml")
    assert JobSettings.model_fields["temperature"].metadata[-1].le == 2  # the one declaration the checks read
    assert endpoint_of(EndpointSettings()).concurrency == EndpointSettings.model_fields["concurrency"].default


def test_a_job_builds_one_spec_with_shorthands_and_bundled_sets() -> None:
    spec = spec_of(JobSettings.model_validate({"targets": ["all"], "template": "compact", "shots": "default"}))
    assert spec.targets == ("prompt", "response", "relevance") and spec.template_dir.endswith("prompts/compact")
    assert spec.shots_path.endswith("default_shots.jsonl") and spec.response_format == "json-schema"
    with pytest.raises(ConfigError, match="only a study's exemplar search"):
        spec_of(JobSettings.model_validate({"shots": "chosen"}))
    with pytest.raises(ValueError, match="need one item per request"):
        JobSettings.model_validate({"logprobs": True, "items_per_request": 4})


def test_every_grading_command_takes_the_same_endpoint_flags(cli: CliRunner) -> None:
    import re

    flags = {name: set(re.findall(r"--[a-z][a-z-]+", cli.invoke(app, [name, "--help"], terminal_width=200).output))
             for name in ("grade", "probe", "calibrate-shots", "run")}
    wanted = {"--base-url", "--api-key", "--azure-api-version", "--concurrency", "--timeout", "--deadline",
              "--max-attempts", "--transport", "--cache-dir", "--no-cache"}
    for name, found in flags.items():
        assert wanted <= found, (name, wanted - found)


def test_a_bad_setting_names_its_flag_or_variable(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = cli.invoke(app, ["grade", str(SAMPLE), "--timeout", "0", "-o", str(tmp_path / "r")])
    assert result.exit_code == 2 and "--timeout 0.0: expected more than 0" in result.output
    result = cli.invoke(app, ["grade", str(SAMPLE), "--response-format", "xml", "-o", str(tmp_path / "r")])
    assert result.exit_code == 2 and "--response-format 'xml': expected one of" in result.output
    monkeypatch.setenv("HARNESS_TEMPERATURE", "9")
    result = cli.invoke(app, ["grade", str(SAMPLE), "-o", str(tmp_path / "r")])
    assert result.exit_code == 2 and "HARNESS_TEMPERATURE 9.0: expected at most 2" in result.output
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_the_environment_sets_a_studys_endpoint_over_its_file(cli: CliRunner, server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """HARNESS_CONCURRENCY is obeyed by a study as by a grade (the study's table says 16); the study's graders are its
    own (HARNESS_MODEL does not replace them)."""
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()[:6]
    (tmp_path / "data.jsonl").write_text("\n".join(lines) + "\n")
    study = tmp_path / "s.toml"
    study.write_text(f'[study]\nout = "{tmp_path / "out"}"\ndata = "data.jsonl"\n'
                     f'[endpoint]\nbase_url = "{server.base_url}"\nconcurrency = 16\n'
                     '[[grader]]\nname = "g"\nmodel = "harness-small"\n')
    monkeypatch.setenv("HARNESS_CONCURRENCY", "2")
    monkeypatch.setenv("HARNESS_MODEL", "harness-literal")
    monkeypatch.setenv("HARNESS_MAX_ATTEMPTS", "2")
    from harness.workflows.study.reading import read_study
    from harness.workflows.study.runner import StudyRunner

    found = StudyRunner(read_study(study), tmp_path / "out", None, None).endpoint
    assert (found.get().concurrency, found.get().retry.max_attempts) == (2, 2)
    result = cli.invoke(app, ["run", str(study), "--concurrency", "3"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out" / "g" / "manifest.json").read_text())
    assert manifest["model"] == "harness-small"


def test_duplicate_targets_grade_each_side_once(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)[:6]), encoding="utf-8")
    argv = [
        "grade",
        str(data),
        "--base-url",
        server.base_url,
        "--target",
        "prompt,prompt",
        "--out",
        str(tmp_path / "r"),
        "--quiet",
        "--cache-dir",
        str(tmp_path / "c"),
    ]
    for _ in range(2):  # and the re-run resumes rather than sticking
        done = cli.invoke(app, argv)
        assert done.exit_code == 0, done.output
    labels = [json.loads(line) for line in (tmp_path / "r" / "labels.jsonl").read_text().splitlines()]
    assert len(labels) == 6 and {r["target"] for r in labels} == {"prompt"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--temperature", "nan"], "--temperature nan: expected a finite number"),
        (["--temperature", "-0.5"], "--temperature -0.5: expected at least 0"),
        (["--concurrency", "100000000"], "--concurrency 100000000: expected at most 1024"),
        (["--timeout", "inf"], "--timeout inf: expected a finite number"),
        (["--seed", "-5"], "--seed -5: expected at least 0"),
        (["--base-url", ""], "--base-url '': expected a non-empty text"),
    ],
)
def test_grade_refuses_out_of_bound_settings_before_any_request(
    cli: CliRunner, tmp_path: Path, argv: list[str], message: str
) -> None:
    result = cli.invoke(app, ["grade", str(SAMPLE), "--out", str(tmp_path / "r"), *argv])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "r").exists()


def test_max_tokens_is_bounded_alike_in_grade_and_the_study_file(cli: CliRunner, tmp_path: Path) -> None:
    """A grader's completion budget: 0 is refused (never read as "the default"), and the study key's bound is
    grade's."""
    from harness.grading.settings import MAX_TOKENS_LIMIT
    from harness.workflows.study.file import study_schema
    from tests.helpers import SAMPLE

    for value, said in (
        ("0", "expected at least 1"),
        (str(MAX_TOKENS_LIMIT + 1), f"expected at most {MAX_TOKENS_LIMIT}"),
    ):
        done = cli.invoke(app, ["grade", str(SAMPLE), "--max-tokens", value, "--limit", "1", "--dry-run"])
        assert done.exit_code == 2 and f"--max-tokens {value}: {said}" in done.output, done.output
    bounds = study_schema()["$defs"]["GraderTable"]["properties"]["max_tokens"]
    assert (bounds["minimum"], bounds["maximum"]) == (1, MAX_TOKENS_LIMIT)


def test_samples_at_temperature_zero_is_refused_with_the_flag(cli: CliRunner, tmp_path: Path) -> None:
    data = few_pairs(tmp_path)
    result = cli.invoke(app, ["grade", str(data), "--samples", "3", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "--samples 3 at --temperature 0.0" in " ".join(result.output.split())
    assert not (tmp_path / "run").exists()


def test_logprobs_with_several_items_per_request_is_refused(cli: CliRunner, tmp_path: Path) -> None:
    data = few_pairs(tmp_path)
    result = cli.invoke(
        app, ["grade", str(data), "--logprobs", "--items-per-request", "4", "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 2
    assert "one item per request" in " ".join(result.output.split())
