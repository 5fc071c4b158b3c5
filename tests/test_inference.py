"""Valid inference with grader labels: each defect of the audit, as a test that failed before the fix."""

from __future__ import annotations

from harness.io.pairs import load_pairs
from tests.helpers import SAMPLE


def test_the_shot_search_splits_by_prompt_even_without_prompt_id() -> None:
    from harness.workflows.shot_search import exemplar_candidates, pool_texts, split_pool

    frame = load_pairs(SAMPLE).drop(columns=["prompt_id"])  # clusters fall back to the prompt text, not the id
    splits = split_pool(frame, dev_frac=0.3, test_frac=0.3, seed=20260709)
    prompts = {name: set(part["prompt"]) for name, part in splits.items()}
    assert not prompts["pool"] & prompts["test"] and not prompts["dev"] & prompts["test"]  # were 48 and 37 shared texts
    held_out = pool_texts(splits["dev"]) | pool_texts(splits["test"])
    assert not {s.text for shots in exemplar_candidates(splits["pool"], held_out).values() for s in shots} & held_out


def test_the_selection_is_recommended_only_when_held_out_test_says_better() -> None:
    from harness.results.common import Difference
    from harness.results.shots import TestSet
    from harness.workflows.shot_search import recommend

    def row(name: str, low: float, high: float) -> TestSet:
        return TestSet(set=name, shots=0, score=0.4, chosen_minus_this=Difference(diff=(low + high) / 2, ci=[low, high],
                                                                                 n_items=90, n_clusters=30))

    better = [row("zero_shot", 0.01, 0.1), row("default", 0.02, 0.2), TestSet(set="chosen", shots=6, score=0.5)]
    assert recommend("random1", better)[0] == "chosen"
    worse = [row("zero_shot", -0.04, 0.002), row("default", -0.1, -0.01), TestSet(set="chosen", shots=6, score=0.3)]
    recommended, sentence = recommend("random1", worse)
    assert recommended == "default" and "worse than default" in sentence
    even = [row("zero_shot", -0.02, 0.05), row("default", -0.03, 0.04), TestSet(set="chosen", shots=6, score=0.3)]
    assert recommend("random1", even)[1].startswith("not recommended")
