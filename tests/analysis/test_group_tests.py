"""Groups (models) compared matched on the prompt, against a reference group named, never chosen from the data."""

from __future__ import annotations

from harness.analysis.transitions import analyze
from validation.studies import Setting, study


def test_groups_are_matched_on_the_prompt_even_with_cluster_none() -> None:
    graded, _ = study(Setting(n_prompts=80, per=3), 4, labelled_clusters=1)
    comparison = analyze(graded, by="model", cluster="none", n_boot=0).comparison
    assert comparison is not None and comparison.matched_on == "prompt_id"
    # was 0 and p = 1
    assert all(row.n_shared == 80 and row.n_clusters == 80 for row in comparison.metrics["escalation"])
    assert comparison.reference == "m0"  # the first group, fixed before looking at the data


def test_the_reference_group_is_not_chosen_from_the_data() -> None:
    graded, _ = study(Setting(n_prompts=60, per=4), 5, labelled_clusters=1)
    harmful_last = graded.copy()
    harmful_last.loc[harmful_last["model"] == "m3", [f"response_{c}" for c in ("hate", "violence")]] = 3
    assert analyze(harmful_last, by="model", n_boot=0).comparison.reference == "m0"  # was m3, the most harmful
