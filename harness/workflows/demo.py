"""``harness demo``: the bundled study file (``harness/data/demo.toml``) run in a fresh folder on the embedded endpoint.

``harness demo --local-model`` runs ``harness/data/demo_local.toml`` instead: a real language model (SmolLM2-135M,
the ``[local]`` extra) grades 32 bundled pairs beside the embedded grader, both calibrated against the human labels.

The study starts ``harness serve`` (three small in-context graders, cross-fitted so no text is
graded by a model that saw it) as a background process on a free loopback port, then grades
the bundled sample with two graders, searches exemplars on a dev split and judges them on
held-out prompts, calibrates against the human labels, compares the graders, sets them beside
three annotators' ceiling, analyses the transitions (corrected by a random third of the human
labels), plans the next labelling round and picks its clusters, and writes the report and the
item viewer. The steps themselves are :mod:`harness.workflows.study`'s; this module only adds
the demo's fresh folder and the helpers that start the embedded endpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DEMO_MARKER = ".harness-demo"
#: What a new demo keeps of an earlier one: its completion cache (answers are keyed by all that fixes them).
KEPT = (".cache",)


def fresh_demo_folder(folder: Path) -> None:
    """A demo starts from scratch: it removes what harness wrote in ``folder`` (an earlier demo's outputs), and
    refuses, before touching anything, a folder holding any file harness did not write."""
    from ..core.atomic import atomic_path, ensure_folder
    from ..core.ownership import check_clearable, clear

    check_clearable(folder, param="`run_dir`", keep=KEPT)
    clear(folder, keep=KEPT)
    ensure_folder(folder, param="run_dir")
    with atomic_path(folder / DEMO_MARKER, kind="marker") as tmp:
        tmp.write_text("made by harness demo; harness demo may delete this folder\n", encoding="utf-8")


def demo_study_path(local_model: bool = False) -> Path:
    """The bundled demo study file (``demo_local.toml``: the real local model beside the embedded grader)."""
    return Path(__file__).resolve().parents[1] / "data" / ("demo_local.toml" if local_model else "demo.toml")


def run_demo(run_dir: str | Path | None = None, *, local_model: bool = False, on_step: Any = None,
             on_progress: Any = None, flags: dict[str, Any] | None = None) -> Any:
    """The demo study in a fresh ``run_dir`` (an earlier demo's folder is replaced; any other non-empty folder refused).
    ``local_model``: SmolLM2-135M grades 32 pairs beside the embedded grader (needs the [local] extra; checked
    first)."""
    from .study.reading import read_study
    from .study.run import run_study

    study = read_study(demo_study_path(local_model))
    if local_model:
        from ..core.errors import ConfigError
        from ..serve.local_model import INSTALL_COMMAND, LOCAL_MODELS, missing_modules

        missing = sorted({name for model in LOCAL_MODELS for name in missing_modules(model)})
        if missing:
            raise ConfigError(
                f"the demo's local model needs the optional extra [local] (missing: {', '.join(missing)}); "
                f"install it with: {INSTALL_COMMAND}"
            )
    folder = Path(run_dir or ("runs/demo-local" if local_model else "runs/demo"))
    fresh_demo_folder(folder)
    # the demo runs offline whatever the environment says (an OPENAI_BASE_URL in the shell is not the demo's endpoint)
    return run_study(study, out=folder, on_step=on_step, on_progress=on_progress,
                     flags={**(flags or {}), "base_url": "embedded"})
