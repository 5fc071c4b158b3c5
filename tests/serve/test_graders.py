"""The embedded graders cannot peek: no text, nor a near copy of one, is graded by a model that saw its label; and the
order of the exemplars and of the rubric's levels can move them, as they move an LLM."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.analysis.probes import PADDING
from harness.analysis.stats import cohen_kappa_score
from harness.core.constants import CATEGORIES
from harness.grading.grade import GradeSpec, grade
from harness.grading.shots import Shot, write_shots
from harness.io.pairs import load_pairs, write_pairs
from harness.io.runs import read_labels
from harness.serve.chat import read_exemplars
from harness.serve.config import ServeConfig
from harness.serve.graders import (
    FOLDS,
    PROFILES,
    CrossFitted,
    Exemplar,
    InContextGrader,
    Shots,
    build_graders,
    text_key,
)
from harness.serve.runner import start_server
from tests.helpers import SAMPLE, endpoint_for


@pytest.fixture(scope="module")
def fitted() -> CrossFitted:
    return CrossFitted(load_pairs(SAMPLE), "small")


def _never_saw(fitted: CrossFitted, text: str, index: int) -> bool:
    """The model judging ``text`` was fitted without the fitted item ``index`` (and so without its whole cluster)."""
    kind, left_out = fitted.excluded(text)
    unit = fitted.fold[index] if kind == "folds" else fitted.cluster[index]
    return int(unit) in left_out


def test_no_variant_of_a_fitted_text_is_judged_by_a_model_that_saw_its_label(fitted: CrossFitted) -> None:
    variants = {
        "as fitted": lambda t: t,
        "trailing white space": lambda t: t + "  \n\n",
        "white space inside": lambda t: t.replace(" ", "   "),
        "upper case": lambda t: t.upper(),
        "fullwidth and zero-width": lambda t: t.replace("a", "\uff41").replace(" ", " \u200b"),
        "no punctuation": lambda t: "".join(ch for ch in t if ch.isalnum() or ch.isspace()),
        "padded (the verbosity probe)": lambda t: t + PADDING * 3,
        "a tail cut": lambda t: t[: int(len(t) * 0.9)],
    }
    for index, (text, _, _, _) in enumerate(fitted.items):
        for name, variant in variants.items():
            if name == "a tail cut" and len(text) < 60:
                continue  # a tenth of a short text is most of its 5-grams: no longer a near copy
            assert _never_saw(fitted, variant(text), index), (name, text)


def test_a_model_is_never_fitted_on_a_text_it_judges(fitted: CrossFitted) -> None:
    for text, _, _, _ in fitted.items[::7]:
        kind, left_out = fitted.excluded(text)
        units = fitted.fold if kind == "folds" else fitted.cluster
        trained = {t for (t, _, _, _), unit in zip(fitted.items, units, strict=True) if int(unit) not in left_out}
        assert text_key(text) not in {text_key(t) for t in trained}


def test_a_new_text_is_judged_without_the_fold_its_words_hash_to(fitted: CrossFitted) -> None:
    new = "A wholly new sentence about growing tomatoes on a sunny balcony in spring."
    assert fitted.near_copies(new).size == 0
    kind, left_out = fitted.excluded(new)
    assert kind == "folds" and len(left_out) == 1 and fitted.excluded(new.upper() + "  ") == (kind, left_out)
    hashed = {fitted.excluded(f"garden note number {i} about beans")[1] for i in range(40)}
    assert len(hashed) == FOLDS  # new texts spread over every fold's model, none over the model fitted on everything


def test_text_keys_ignore_form_only() -> None:
    assert text_key("Ｈｏｗ  do\u200b I bake?\n") == text_key("how do i bake") == "how do i bake"
    assert text_key("How do I bake?") != text_key("How do I bomb?")


def _grader() -> InContextGrader:
    return InContextGrader(PROFILES["harness-small"], CrossFitted(load_pairs(SAMPLE), "small"), "test")


def test_exemplar_order_and_level_order_move_the_probabilities() -> None:
    grader = _grader()
    frame = load_pairs(SAMPLE)
    text = frame["response"].iloc[5]
    shots = [Exemplar(text, "response", (0, 0, 0, 0)), Exemplar(text, "response", (0, 0, 3, 0)),
             *(Exemplar(t, "response", (0, 0, 1, 0)) for t in frame["response"].iloc[20:24])]
    forward = grader.probabilities("response", text, Shots(shots))
    backward = grader.probabilities("response", text, Shots(reversed(shots)))
    assert not np.allclose(forward, backward)  # the later exemplars weigh more
    ascending, descending = Shots(shots), Shots(shots)
    ascending.first_level, descending.first_level = 0, 3
    low = grader.probabilities("response", text, ascending) @ np.arange(4)
    high = grader.probabilities("response", text, descending) @ np.arange(4)
    assert (high > low).all()  # levels listed from 7 down pull every category's expected severity up


def test_the_rubric_level_order_is_read_from_the_system_message() -> None:
    system = "Rubric.\n- 0: harmless.\n- 1: mild.\n  continued\n- 7: worst.\n"
    reversed_system = "Rubric.\n- 7: worst.\n- 1: mild.\n- 0: harmless.\n"
    turn = {"role": "user", "content": "Grade the following prompt text."}
    assert read_exemplars([{"role": "system", "content": system}, turn]).first_level == 0
    assert read_exemplars([{"role": "system", "content": reversed_system}, turn]).first_level == 3
    assert read_exemplars([{"role": "system", "content": "No scale here."}, turn]).first_level is None


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
    hot = lambda seed: [
        tuple(v.severity for v in grader.grade("response", t, temperature=2.0, seed=seed).values()) for t in texts
    ]
    assert hot(1) == hot(1) and hot(1) != hot(2)  # seeded sampling: repeatable, and it does sample
    cold = [tuple(v.severity for v in grader.grade("response", t, seed=s).values()) for s in (1, 2) for t in texts[:5]]
    assert cold[:5] == cold[5:]  # temperature 0 ignores the seed


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
    data = write_pairs(
        pd.DataFrame({"id": ["a", "b"], "prompt": ["q", "q2"], "response": refusals}), tmp_path / "d.jsonl"
    )
    for model in ("harness-baseline", "harness-literal"):
        grade(data, GradeSpec(model=model, targets=("response",)), endpoint_for(server), run_dir=tmp_path / model)
    base = {r["id"]: r["severity"]["violence"] for r in read_labels(tmp_path / "harness-baseline")}
    literal = {r["id"]: r["severity"]["violence"] for r in read_labels(tmp_path / "harness-literal")}
    assert all(literal[k] >= 1 for k in literal) and all(literal[k] >= base[k] for k in base)
