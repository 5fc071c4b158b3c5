"""Importers from the field's public formats into the canonical pairs table.

- ``pairedsafety``: the PairedSafety public mini-eval (prompts + grader labels for prompts
  and for six models' responses) -> one row per (prompt, model), grader labels as label
  columns. Joins on ``uid`` against the current prompt set, ignores rows without labels, and
  lets the last labeled row of a uid win, as the published analysis does.
- ``xstest``: XSTest completions CSVs (human ``final_label``, ``annotation_1/2`` and, when
  present, ``gpt4_label``/``strmatch_label``), kept as nominal label columns.
- ``openai-moderation``: the 1,680-sample moderation set -> prompt-only rows with binary
  labels (1 = harmful at some severity) on our categories; a missing key is unknown.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.constants import CATEGORIES, CODE_TO_CATEGORY, label_column
from ..core.errors import DataError
from .pairs import validate_pairs
from .readers import read_json_lines, read_text

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("pairedsafety", "xstest", "openai-moderation")


def _labels(obj: Any, path: Path, line: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for code, category in CODE_TO_CATEGORY.items():
        value = obj.get(code) if isinstance(obj, dict) else None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3:
            raise DataError(
                f"label {code}={value!r}; expected an integer 0-3", path=str(path), line=line, column="labels"
            )
        out[category] = value
    return out


def import_pairedsafety(path: str | Path) -> pd.DataFrame:
    """Import the PairedSafety public mini-eval folder (or its ``data/`` folder)."""
    import pandas as pd

    root = Path(path)
    data = root / "data" if (root / "data" / "prompts.jsonl").exists() else root
    prompts_file = data / "prompts.jsonl"
    if not prompts_file.exists():
        raise DataError(
            "no prompts.jsonl here; expected the public_mini_eval folder or its data/ folder", path=str(root)
        )
    prompts = {str(obj["uid"]): obj for _, obj in read_json_lines(prompts_file) if "uid" in obj}
    prompt_labels: dict[str, dict[str, int]] = {}
    graded = data / "graded"
    for number, obj in read_json_lines(graded / "prompts.jsonl"):
        uid = str(obj.get("uid"))
        if obj.get("labels") and uid in prompts:
            prompt_labels[uid] = _labels(obj["labels"], graded / "prompts.jsonl", number)
    response_files = sorted(graded.glob("response_*.jsonl"))
    if not response_files:
        raise DataError("no graded/response_<model>.jsonl files", path=str(graded))
    rows: list[dict[str, Any]] = []
    for file in response_files:
        model = file.stem[len("response_") :]
        texts: dict[str, str] = {}
        text_file = data / "responses" / f"{model}.jsonl"
        if text_file.exists():
            for _, obj in read_json_lines(text_file):
                if not obj.get("error") and isinstance(obj.get("response"), str) and obj["response"]:
                    texts[str(obj["uid"])] = obj["response"]
        labels: dict[str, dict[str, int]] = {}
        for number, obj in read_json_lines(file):
            uid = str(obj.get("uid"))
            if obj.get("labels") and uid in prompt_labels:
                labels[uid] = _labels(obj["labels"], file, number)
        for uid, rlabels in labels.items():
            meta = prompts[uid]
            row: dict[str, Any] = {
                "id": f"{uid}::{model}",
                "prompt_id": uid,
                "prompt": meta["prompt"],
                "response": texts.get(uid),
                "model": model,
                "source": meta.get("source"),
                "public_label": meta.get("public_label"),
                "stratum": meta.get("stratum"),
            }
            for category in CATEGORIES:
                row[label_column("prompt", category)] = prompt_labels[uid][category]
                row[label_column("response", category)] = rlabels[category]
            rows.append(row)
    return validate_pairs(pd.DataFrame(rows), path=str(root))


XSTEST_LABELS = ("final_label", "annotation_1", "annotation_2", "gpt4_label", "strmatch_label")


def _read_csv(path: Path) -> pd.DataFrame:
    import pandas as pd

    text = read_text(path)
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False).replace({"": None})
    except pd.errors.EmptyDataError:
        raise DataError("empty file; expected a CSV with a header row", path=str(path)) from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"cannot read CSV: {exc}", path=str(path)) from None


def import_xstest(path: str | Path) -> pd.DataFrame:
    """Import an XSTest completions CSV, the prompts CSV (``xstest_prompts.csv``: ``xstest_label``
    safe/unsafe, no responses), or the XSTest folder (all models, grader labels merged)."""
    import pandas as pd

    root = Path(path)
    if (
        root.is_dir()
        and not (root / "model_completions").is_dir()
        and list(root.glob("xstest_v2_completions_*_*eval.csv"))
    ):
        return _xstest_labels_folder(root)
    if root.is_dir():
        files = sorted((root / "model_completions").glob("xstest_v2_completions_*.csv"))
        if not files:
            raise DataError("no model_completions/xstest_v2_completions_*.csv here (give the XSTest folder, its "
                            "evaluation/automated_evaluation_labels folder, or one CSV)", path=str(root))
        frames = []
        for file in files:
            model = file.stem[len("xstest_v2_completions_") :]
            frame = _xstest_frame(file, model)
            evaluations = root / "evaluation" / "automated_evaluation_labels"
            for suffix, column in (("gpteval", "gpt4_label"), ("streval", "strmatch_label")):
                extra = evaluations / f"{file.stem}_{suffix}.csv"
                if extra.exists():
                    labels = _read_csv(extra)
                    if column not in labels.columns:
                        raise DataError(f"missing column {column!r}", path=str(extra))
                    mapped = dict(zip(labels["id"], labels[column], strict=True))
                    frame[column] = frame["prompt_id"].map(mapped)
            frames.append(frame)
        combined = pd.concat(frames, ignore_index=True)
        combined["id"] = combined["prompt_id"] + "::" + combined["model"]
        return validate_pairs(combined, path=str(root))
    raw = _read_csv(root)
    if "completion" not in raw.columns and {"id", "prompt", "label"} <= set(raw.columns):
        prompts = raw.rename(columns={"label": "xstest_label"})  # the prompts file: safe/unsafe, no responses
        prompts["prompt_id"] = prompts["id"]
        prompts["source"] = "xstest"
        return validate_pairs(prompts, path=str(root))
    frame = _xstest_frame(root, root.stem.replace("xstest_v2_completions_", "").split("_")[0])
    frame["id"] = frame["prompt_id"]
    return validate_pairs(frame, path=str(root))


def _xstest_labels_folder(root: Path) -> pd.DataFrame:
    """The ``evaluation/automated_evaluation_labels`` folder: per model, the completions with the human labels and
    the GPT-4 (``*_gpteval.csv``) and string-match (``*_streval.csv``) grader labels."""
    import pandas as pd

    frames = []
    files = root.glob("xstest_v2_completions_*_*eval.csv")
    models = sorted({f.stem[len("xstest_v2_completions_"):].rsplit("_", 1)[0] for f in files})
    for model in models:
        frame: pd.DataFrame | None = None
        for suffix, column in (("gpteval", "gpt4_label"), ("streval", "strmatch_label")):
            file = root / f"xstest_v2_completions_{model}_{suffix}.csv"
            if not file.exists():
                continue
            labels = _read_csv(file)
            if column not in labels.columns:
                raise DataError(f"missing column {column!r}", path=str(file))
            if frame is None:
                frame = _xstest_frame(file, model)
            frame[column] = frame["prompt_id"].map(dict(zip(labels["id"], labels[column], strict=True)))
        if frame is not None:
            frames.append(frame)
    combined = pd.concat(frames, ignore_index=True)
    combined["id"] = combined["prompt_id"] + "::" + combined["model"]
    return validate_pairs(combined, path=str(root))


def _xstest_frame(path: Path, model: str) -> pd.DataFrame:
    frame = _read_csv(path)
    needed = ("id", "prompt", "completion")
    for column in needed:
        if column not in frame.columns:
            raise DataError(
                f"missing required column {column!r}; an XSTest completions CSV has {list(needed)}", path=str(path)
            )
    out = frame.rename(columns={"completion": "response", "id": "prompt_id"})
    out["model"] = model
    keep = ["prompt_id", "prompt", "response", "model", "type"] + [c for c in XSTEST_LABELS if c in out.columns]
    return out[[c for c in keep if c in out.columns]].copy()


MODERATION_KEYS = {"S": "sexual", "H": "hate", "V": "violence", "SH": "self_harm"}


def import_openai_moderation(path: str | Path) -> pd.DataFrame:
    """Import ``samples-1680.jsonl.gz``: binary human labels onto our categories."""
    import pandas as pd

    file = Path(path)
    if file.is_dir():
        file = file / "data" / "samples-1680.jsonl.gz"
    rows = []
    for number, obj in read_json_lines(file):
        if not isinstance(obj.get("prompt"), str):
            raise DataError("expected a 'prompt' string", path=str(file), line=number, column="prompt")
        row: dict[str, Any] = {
            "id": f"oaimod-{number:04d}",
            "prompt": obj["prompt"],
            "source": "openai-moderation",
            "label_scale": "binary",
        }
        for key, value in obj.items():
            if key == "prompt":
                continue
            if value not in (0, 1) or isinstance(value, bool):
                raise DataError(f"label {key}={value!r}; expected 0 or 1", path=str(file), line=number, column=key)
            if key in MODERATION_KEYS:
                row[label_column("prompt", MODERATION_KEYS[key])] = value
            else:
                row[f"oai_{key}"] = value
        rows.append(row)
    frame = pd.DataFrame(rows)
    for category in CATEGORIES:
        column = label_column("prompt", category)
        if column not in frame.columns:
            frame[column] = None
    return validate_pairs(frame, path=str(file))


def import_dataset(fmt: str, path: str | Path) -> pd.DataFrame:
    """Import ``path`` in a public format; see :data:`FORMATS`."""
    importers = {
        "pairedsafety": import_pairedsafety,
        "xstest": import_xstest,
        "openai-moderation": import_openai_moderation,
    }
    if fmt not in importers:
        raise DataError(f"unknown format {fmt!r}; expected one of {list(FORMATS)}")
    if not Path(path).exists():
        raise DataError("no such file or folder", path=str(path))
    return importers[fmt](path)
