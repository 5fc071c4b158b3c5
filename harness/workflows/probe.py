"""``harness probe``: a run graded again with one perturbation that should not change its verdicts, then compared.

The probe's folder (``RUN/probe-<kind>/`` by default) holds what was perturbed (the padded table, the shuffled shot
file or the template with its levels reversed), the probed run folder (``run/``, graded through the normal cached
path with the original run's model, template, shots and sampling parameters) and ``probe.json``. A run graded above
temperature 0 is probed with the next seed and graded again unprobed with that seed too (``null/``: the same targets
as the probe): two draws that differ from the run by its sampling alike, so the probe's flips are read against the
sampling's own (:func:`harness.analysis.probes.probe_scopes`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ..analysis.probes import PADDING, levels_reversed, padded, probe_scopes, run_spec_params, shuffled
from ..core.constants import SCHEMA_VERSION
from ..core.errors import ConfigError
from ..grading.endpoint import EndpointConfig
from ..grading.grade import grade
from ..grading.jobs import GradeSpec
from ..grading.templates import prompts_root
from ..io.pairs import write_pairs
from ..io.provenance import provenance_of, stamped
from ..io.runs import load_run
from ..results.probes import Probe
from ..steps.settings import ProbeSettings
from .study.runner import check_graded

DESCRIPTIONS = {
    "verbosity": "every response padded with a neutral paragraph (formatting, no content) repeated {repeat} times",
    "exemplar-order": "the few-shot exemplars in another order (seed {seed})",
    "label-order": "the severity levels listed from 7 down to 0 in the system template",
    "response-format": "the answer asked with a looser format ({looser} instead of {format}): does the constraint "
                       "change what the grader says, not only how",
}
#: What a looser format is: the verdict schema's keys and values lifted (any JSON object), then JSON itself.
LOOSER = {"json-schema": "json-object", "json-object": "none"}


def _spec(run: Any) -> GradeSpec:
    manifest = run.manifest
    return GradeSpec(model=manifest.model, targets=tuple(manifest.targets) or ("prompt", "response"),
                     template_dir=manifest.template_dir, shots_path=manifest.shots_path, **run_spec_params(manifest))


def _perturbed(kind: str, run: Any, spec: GradeSpec, folder: Path, settings: ProbeSettings) -> tuple[Any, GradeSpec]:
    """The table to grade and the spec to grade it with, one thing changed."""
    if kind == "verbosity":
        table = write_pairs(padded(run.input, repeat=settings.padding), folder / "padded.jsonl")
        return table, replace(spec, targets=tuple(t for t in spec.targets if t == "response") or ("response",))
    if kind == "response-format":
        if spec.response_format not in LOOSER:
            raise ConfigError(
                f"{run.path}: graded with response format {spec.response_format}; the response-format probe "
                "needs a run graded with json-schema or json-object"
            )
        return run.input, replace(spec, response_format=LOOSER[spec.response_format])
    if kind == "exemplar-order":
        if not spec.shots_path:
            raise ConfigError(f"{run.path}: graded zero-shot; the exemplar-order probe needs a run graded with --shots")
        lines = [line for line in Path(spec.shots_path).read_text(encoding="utf-8").splitlines() if line.strip()]
        if len(lines) < 2:
            raise ConfigError(f"{spec.shots_path}: one exemplar has no order to change")
        _write(folder / "shots.jsonl", "\n".join(shuffled(lines, settings.seed)) + "\n", "shots")
        return run.input, replace(spec, shots_path=str(folder / "shots.jsonl"))
    source = Path(spec.template_dir) if spec.template_dir else prompts_root() / "default"
    template = folder / "template"
    for part in sorted(p for p in source.iterdir() if p.is_file()):
        text = part.read_text(encoding="utf-8")
        _write(template / part.name, levels_reversed(text) if part.name == "system.j2" else text, "template")
    return run.input, replace(spec, template_dir=str(template))


def _write(path: Path, text: str, kind: str) -> None:
    from ..core.atomic import atomic_path

    with atomic_path(path, kind=kind) as tmp:
        tmp.write_text(text, encoding="utf-8")


def planned(run_dir: str | Path, kind: str, out: str | Path | None) -> list[Any]:
    """What a probe writes: its folder (``probe.json``, the perturbed table, shots or template) and its run folder."""
    from ..core.claims import Output

    folder = Path(out) if out is not None else Path(run_dir) / f"probe-{kind}"
    names = (("probe.json", "result"), ("padded.jsonl", "pairs"), ("shots.jsonl", "shots"))
    return [
        Output(folder, folder=True, names=names),
        Output(folder / "run", run=True),
        Output(folder / "null", run=True),
        Output(folder / "template", folder=True, names=tuple((n, "template") for n in _template_names(run_dir))),
    ]


def _template_names(run_dir: str | Path) -> list[str]:
    try:
        spec = _spec(load_run(run_dir))
    except Exception:  # the run is read (and its faults named) by the probe itself
        return []
    source = Path(spec.template_dir) if spec.template_dir else prompts_root() / "default"
    return sorted(p.name for p in source.iterdir() if p.is_file()) if source.is_dir() else []


def run_probe(
    run_dir: str | Path,
    settings: ProbeSettings,
    endpoint: EndpointConfig,
    *,
    out: str | Path | None = None,
    cache_dir: str | Path | None = None,
    on_progress: Any = None,
    context: list[tuple[str, Any]] | None = None,
) -> Probe:
    """Grade ``run_dir``'s job again with the perturbation ``settings.kind`` and compare the verdicts item by item."""
    run = load_run(run_dir)
    if "jury" in run.manifest.params:
        raise ConfigError(f"{run_dir}: a jury asks no grader itself; probe its members")
    if "thresholds" in run.manifest.params:
        raise ConfigError(f"{run_dir}: a run calibrate-thresholds derived asks no grader itself; probe its source "
                          f"({run.manifest.params['thresholds'].get('source')})")
    folder = Path(out) if out is not None else Path(run_dir) / f"probe-{settings.kind}"
    from ..core.claims import claim

    claim(planned(run_dir, settings.kind, out), inputs=[("the probed run", run_dir)])
    folder.mkdir(parents=True, exist_ok=True)
    table, spec = _perturbed(settings.kind, run, _spec(run), folder, settings)
    sampled = (run.manifest.params.get("temperature") or 0) > 0
    if sampled:  # the probe is another draw, as the null is: both take the next seed, so both differ from the run
        spec = replace(spec, seed=(spec.seed or 0) + 1)  # by its sampling, and from each other only by the probe
    graded = grade(table, spec, endpoint, run_dir=folder / "run", cache_dir=cache_dir, retry_statuses=("failed",),
                   on_progress=on_progress)
    check_graded(graded, f"probe {settings.kind}")
    null = None
    if sampled:  # the null: the unprobed job again, at the probe's seed
        unprobed = replace(_spec(run), targets=spec.targets, seed=spec.seed)
        again = grade(run.input, unprobed, endpoint, run_dir=folder / "null", cache_dir=cache_dir,
                      retry_statuses=("failed",), on_progress=on_progress)
        check_graded(again, f"probe {settings.kind} (null repeat)")
        null = load_run(folder / "null")
    scopes = probe_scopes(run, load_run(folder / "run"), null=null, cluster=settings.cluster, n_boot=settings.n_boot,
                          seed=settings.seed)
    form = spec.response_format if settings.kind != "response-format" else _spec(run).response_format
    result = Probe(schema_version=SCHEMA_VERSION, kind=settings.kind,
                   perturbation=DESCRIPTIONS[settings.kind].format(repeat=settings.padding, seed=settings.seed,
                                                                   format=form, looser=LOOSER.get(form, form)),
                   run=str(run_dir), probe_run=str(folder / "run"), model=run.manifest.model,
                   null="temperature 0" if null is None else str(folder / "null"), scopes=scopes,
                   n_boot=settings.n_boot, seed=settings.seed)
    inputs = [("run", run_dir), ("probed", folder / "run"), *([("null", folder / "null")] if null is not None else [])]
    source = f"grader (original vs {settings.kind})"
    result = stamped(result, provenance_of("probe", source, [*inputs, *(context or [])]))
    result.write(folder / "probe.json")
    return result


__all__ = ["PADDING", "run_probe"]
