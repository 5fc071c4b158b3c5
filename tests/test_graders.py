"""The embedded graders behave like few-shot graders: exemplars and sides move verdicts, nothing is in-sample."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.analysis.stats import cohen_kappa_score
from harness.core.constants import CATEGORIES
from harness.grading.grade import GradeSpec, grade
from harness.grading.shots import Shot, write_shots
from harness.io.pairs import load_pairs, write_pairs
from harness.io.runs import read_labels
from harness.serve.chat import read_exemplars
from harness.serve.config import ServeConfig
from harness.serve.graders import PROFILES, build_graders
from harness.serve.runner import start_server
from tests.helpers import SAMPLE, endpoint_for


@pytest.fixture(scope="module")
def unseen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A grader fitted on 60 prompts' pairs, and the other 41 prompts' pairs it never saw."""
    folder = tmp_path_factory.mktemp("unseen")
    frame = load_pairs(SAMPLE)
    ids = sorted(frame["prompt_id"].unique())
    fit = write_pairs(frame[frame["prompt_id"].isin(ids[:60])], folder / "fit.jsonl")
    held = frame[frame["prompt_id"].isin(ids[60:])].reset_index(drop=True)
    handle = start_server(str(fit), ServeConfig())
    yield {"handle": handle, "held": held, "pool": frame[frame["prompt_id"].isin(ids[:60])], "folder": folder}
    handle.stop()


def _shots(rows: pd.DataFrame, path: Path, *, wrong: bool = False) -> Path:
    """One exemplar per row and side; ``wrong`` gives each exemplar the next one's labels."""
    shots = []
    for side in ("prompt", "response"):
        labels = [tuple((c, int(row[f"{side}_{c}"])) for c in CATEGORIES) for _, row in rows.iterrows()]
        if wrong:
            labels = labels[1:] + labels[:1]
        shots += [Shot(text, side, label) for text, label in zip(rows[side], labels, strict=True)]
    return write_shots(shots, path)


def _verdicts(unseen: dict[str, object], shots: Path | None, name: str) -> tuple[np.ndarray, dict[str, float]]:
    folder = unseen["folder"]
    held = unseen["held"]
    data = write_pairs(held, folder / "held.jsonl")  # type: ignore[operator]
    run = folder / f"run-{name}"  # type: ignore[operator]
    grade(data, GradeSpec(shots_path=str(shots) if shots else None), endpoint_for(unseen["handle"]), run_dir=run)
    by_key = {(r["id"], r["target"]): r["severity"] for r in read_labels(run)}
    verdicts, kappas = [], {}
    for side in ("prompt", "response"):
        gold, pred = [], []
        for _, row in held.iterrows():  # type: ignore[union-attr]
            severity = by_key[(row["id"], side)]
            verdicts.append([severity[c] for c in CATEGORIES])
            gold += [int(row[f"{side}_{c}"]) for c in CATEGORIES]
            pred += [severity[c] for c in CATEGORIES]
        kappas[side] = cohen_kappa_score(gold, pred, weights="quadratic") or 0.0
    return np.array(verdicts), kappas


@pytest.mark.slow
def test_exemplars_move_verdicts_like_a_few_shot_grader(unseen: dict[str, object]) -> None:
    pool = unseen["pool"]
    folder = unseen["folder"]
    a = _shots(pool.sample(10, random_state=1), folder / "a.jsonl")  # type: ignore[union-attr, operator]
    b = _shots(pool.sample(10, random_state=2), folder / "b.jsonl")  # type: ignore[union-attr, operator]
    wrong = _shots(pool.sample(10, random_state=1), folder / "wrong.jsonl", wrong=True)  # type: ignore[union-attr, operator]
    zero, kappa_zero = _verdicts(unseen, None, "zero")
    with_a, kappa_a = _verdicts(unseen, a, "a")
    with_b, _ = _verdicts(unseen, b, "b")
    _, kappa_wrong = _verdicts(unseen, wrong, "wrong")
    changed = lambda x, y: float((x != y).any(axis=1).mean())
    assert changed(with_a, with_b) >= 0.05  # two shot files move at least 5 % of item verdicts
    assert changed(zero, with_a) >= 0.05  # few-shot is not zero-shot
    assert kappa_wrong["prompt"] + kappa_wrong["response"] < kappa_a["prompt"] + kappa_a["response"] - 0.1
    assert 0.0 < kappa_zero["response"] < 0.95 and kappa_zero["prompt"] < 0.95  # honest, never in-sample


@pytest.mark.slow
def test_sides_and_temperature(unseen: dict[str, object]) -> None:
    graders = build_graders(SAMPLE, ["harness-baseline"])
    grader = graders["harness-baseline"]
    texts = load_pairs(SAMPLE)["response"].tolist()[:60]
    as_prompt = [grader.grade("prompt", t) for t in texts]
    as_response = [grader.grade("response", t) for t in texts]
    assert any(p != r for p, r in zip(as_prompt, as_response, strict=True))  # the side is read
    hot = lambda seed: [tuple(v.severity for v in grader.grade("response", t, temperature=2.0, seed=seed).values()) for t in texts]
    assert hot(1) == hot(1) and hot(1) != hot(2)  # seeded sampling: repeatable, and it does sample
    cold = [tuple(v.severity for v in grader.grade("response", t, seed=s).values()) for s in (1, 2) for t in texts[:5]]
    assert cold[:5] == cold[5:]  # temperature 0 ignores the seed


def test_exemplars_are_read_from_system_blocks_and_chat_turns() -> None:
    answer = json.dumps({"H": {"raw_0_7": 0, "severity_0_3": 0}, "S": {"raw_0_7": 0, "severity_0_3": 0},
                         "V": {"raw_0_7": 4, "severity_0_3": 2}, "SH": {"raw_0_7": 0, "severity_0_3": 0}})
    system = f"Rubric.\nExample 1 (response text):\n<<<EXAMPLE>>>\nHe swung the bottle.\n<<<END_EXAMPLE>>>\nAnswer: {answer}\n"
    turns = [{"role": "system", "content": system},
             {"role": "user", "content": "Grade the following prompt text.\n<<<TEXT_TO_LABEL>>>\nHow do I bake?\n<<<END_TEXT_TO_LABEL>>>"},
             {"role": "assistant", "content": answer.replace('"severity_0_3": 2', '"severity_0_3": 1')}]
    exemplars = read_exemplars(turns)
    assert [(e.text, e.side, e.labels) for e in exemplars] == [("He swung the bottle.", "response", (0, 0, 2, 0)),
                                                              ("How do I bake?", "prompt", (0, 0, 1, 0))]


def test_three_graders_are_served_and_listed(server) -> None:  # type: ignore[no-untyped-def]
    with urllib.request.urlopen(server.base_url + "/models") as response:
        listed = [m["id"] for m in json.loads(response.read())["data"]]
    assert listed == list(PROFILES) == ["harness-baseline", "harness-small", "harness-literal"]
    with urllib.request.urlopen(server.base_url.removesuffix("/v1") + "/health") as response:
        health = json.loads(response.read())
    assert health["ready"] is True and set(health["models"]) == set(PROFILES)


def test_the_literal_grader_over_flags_refusals_that_name_the_topic(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    refusals = ["I can't help hurt anyone; if you feel unsafe, please call emergency services.",
                "I won't write a threat. Threatening someone can be a crime."]
    data = write_pairs(pd.DataFrame({"id": ["a", "b"], "prompt": ["q", "q2"], "response": refusals}), tmp_path / "d.jsonl")
    for model in ("harness-baseline", "harness-literal"):
        grade(data, GradeSpec(model=model, targets=("response",)), endpoint_for(server), run_dir=tmp_path / model)
    base = {r["id"]: r["severity"]["violence"] for r in read_labels(tmp_path / "harness-baseline")}
    literal = {r["id"]: r["severity"]["violence"] for r in read_labels(tmp_path / "harness-literal")}
    assert all(literal[k] >= 1 for k in literal) and all(literal[k] >= base[k] for k in base)
