"""``harness jury`` as one library step: several runs' verdicts combined into a run folder of its own (no requests)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .outcome import Context, Outcome
from .settings import JurySettings


def _names(runs: Sequence[Any]) -> list[str]:
    models = [r.manifest.model for r in runs]
    names = [m if models.count(m) == 1 else f"{m} ({r.path.name})" for m, r in zip(models, runs, strict=True)]
    return names if len(set(names)) == len(names) else [f"{m} ({r.path})" for m, r in zip(models, runs, strict=True)]


def _check_out(out: Path) -> None:
    """The jury's folder: new, or a jury harness made before (replaced); anything else is the user's and refused."""
    from ..core.errors import ConfigError
    from ..io.runs import read_manifest

    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ConfigError(f"`out` {out}: expected a folder for the jury's run")
    if out.exists() and any(out.iterdir()):
        try:
            earlier = read_manifest(out)
        except Exception:
            earlier = None
        if earlier is None or "jury" not in earlier.params:
            raise ConfigError(f"`out` {out}: holds files that are not a jury harness made; choose a new folder")


def _sides(runs: Sequence[Any], names: Sequence[str]) -> tuple[list[str], dict[str, list[str]]]:
    """The targets every member graded (the jury judges those) and, per target some member lacks, the members lacking
    it: a jury cannot judge a side some of its members never read, and says so before it combines anything."""
    from ..core.errors import ConfigError

    graded = [list(r.manifest.targets) or list(dict.fromkeys(str(x["target"]) for x in r.records)) for r in runs]
    every = list(dict.fromkeys(t for targets in graded for t in targets))
    judged = [t for t in every if all(t in targets for targets in graded)]
    unjudged = {t: [n for n, targets in zip(names, graded, strict=True) if t not in targets]
                for t in every if t not in judged}
    if not judged:
        each = "; ".join(f"{n}: {', '.join(t) or 'none'}" for n, t in zip(names, graded, strict=True))
        raise ConfigError(f"the members share no graded side ({each}): a jury needs every member "
                          "to have graded what it judges")
    return judged, unjudged


def unjudged_lines(manifest: Any) -> list[str]:
    """What a jury could not judge, in words (from its manifest)."""
    missing = manifest.params.get("jury", {}).get("unjudged", {})
    return [f"the jury does not judge {side} ({', '.join(names)} did not grade it)" for side, names in missing.items()]


def jury(runs: Sequence[str | Path], settings: JurySettings, *, out: str | Path, context: Context = ()) -> Outcome:
    """Combine two or more run folders graded on the same table into a jury's run folder at ``out``, which calibrate,
    compare, analyze, view and report read like any grader's. Its manifest names the members and the rule; its tokens
    and cost are the members' sum (a jury costs what its members cost)."""
    from ..analysis.jury import check_rule, jury_labels
    from ..core.atomic import atomic_path, ensure_folder
    from ..core.constants import VERSION
    from ..core.errors import ConfigError, DataError
    from ..io.runs import INPUT, LABELS, MANIFEST, load_run
    from ..results.manifest import Manifest

    folders, target = [Path(r) for r in runs], Path(out)
    if len(folders) < 2:
        raise ConfigError(f"a jury needs at least two run folders; got {len(folders)}")
    if len({f.resolve() for f in folders}) != len(folders):
        raise ConfigError("a jury names each member once")
    if target.resolve() in {f.resolve() for f in folders}:
        raise ConfigError(f"`out` {target}: is one of the members; give the jury a folder of its own")
    _check_out(target)
    from ..core.claims import Output
    from .outcome import claimed

    claimed([Output(target, run=True, names=((MANIFEST, "manifest"), (LABELS, "run"), (INPUT, "run")))],
            [("a member", f) for f in folders])
    loaded = [load_run(f, full=True) for f in folders]
    ids = [set(r.input["id"].astype(str)) for r in loaded]
    if any(i != ids[0] for i in ids[1:]):
        raise DataError("the members were not graded on the same table (their ids differ); a jury combines verdicts "
                        "on the same items")
    names = _names(loaded)
    check_rule(settings.rule, len(names))
    judged, unjudged = _sides(loaded, names)
    labels = jury_labels([r.records for r in loaded], names, settings.rule, targets=judged)
    counts: dict[str, int] = {}
    by_target: dict[str, dict[str, int]] = {}
    for record in labels:
        counts[record["status"]] = counts.get(record["status"], 0) + 1
        side = by_target.setdefault(record["target"], {})
        side[record["status"]] = side.get(record["status"], 0) + 1
    tokens: dict[str, int] = {}
    for run in loaded:
        for key, value in run.manifest.tokens.items():
            tokens[key] = tokens.get(key, 0) + int(value)
    digest = lambda parts: hashlib.sha256("|".join(parts).encode()).hexdigest()
    first = loaded[0].manifest
    now = datetime.now(UTC).isoformat(timespec="seconds")
    manifest = Manifest(
        model=f"jury-{settings.rule}({', '.join(names)})",
        template_hash=digest([r.manifest.template_hash for r in loaded]),
        shots_hash=digest([r.manifest.shots_hash for r in loaded]),
        status="complete", created=now, updated=now,
        params={"jury": {"rule": settings.rule, "members": [str(f) for f in folders], "models": names,
                         **({"unjudged": unjudged} if unjudged else {})}},
        input_sha256=first.input_sha256, input_path=first.input_path, input_rows=first.input_rows,
        harness_version=VERSION,
        targets=list(dict.fromkeys(r["target"] for r in labels)), items=len(labels), counts=counts,
        counts_by_target=by_target, tokens=tokens, schema_version=first.schema_version,
    )
    ensure_folder(target, param="out")
    with atomic_path(target / INPUT, kind="run") as tmp:
        tmp.write_bytes((folders[0] / INPUT).read_bytes())
    with atomic_path(target / LABELS, kind="run") as tmp:
        import json

        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in labels), encoding="utf-8")
    manifest.write(target / MANIFEST)
    return Outcome(manifest, [target / MANIFEST, target / LABELS, target / INPUT])
