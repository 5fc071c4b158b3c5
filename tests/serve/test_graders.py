"""The embedded graders cannot peek: no text, nor a near copy of one, is graded by a model that saw its label; and the
order of the exemplars and of the rubric's levels can move them, as they move an LLM."""

from __future__ import annotations

import numpy as np
import pytest

from harness.analysis.probes import PADDING
from harness.io.pairs import load_pairs
from harness.serve.chat import read_exemplars
from harness.serve.graders import FOLDS, PROFILES, CrossFitted, Exemplar, InContextGrader, Shots, text_key
from tests.helpers import SAMPLE


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
