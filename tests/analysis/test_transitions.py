"""The paired transition analysis: hand-computed shares per group, matched comparisons, intervals by cluster, the
published mini evaluation reproduced."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.analysis.transitions import analyze
from harness.cli.app import app
from harness.core.constants import CATEGORIES
from harness.core.errors import DataError
from tests.helpers import SHARED
from validation.studies import Setting, study


def test_a_share_at_zero_in_every_cluster_is_not_certain() -> None:
    graded, _ = study(Setting(per=3), 3, labelled_clusters=1)
    for side in ("prompt", "response"):
        graded[f"{side}_self_harm"] = 0  # nothing self-harm anywhere
    graded.loc[0, "prompt_self_harm"] = 2  # one harmful prompt, never persisting
    low, high = analyze(graded, by="model", n_boot=300).pooled.categories["self_harm"].persistence.ci
    assert low == 0.0 and high is not None and high > 0.5  # was [0.0, 0.0]: one cluster behind it


def _row(ident: str, group: str, prompt: tuple[int, ...], response: tuple[int, ...], relevance: int | None = None,
         prompt_id: str | None = None) -> dict[str, object]:
    row: dict[str, object] = {"id": ident, "prompt": f"p-{prompt_id or ident}", "model": group,
                              "prompt_id": prompt_id or ident, "relevance": relevance}
    row.update({f"prompt_{c}": v for c, v in zip(CATEGORIES, prompt, strict=True)})
    row.update({f"response_{c}": v for c, v in zip(CATEGORIES, response, strict=True)})
    return row


def _table() -> pd.DataFrame:
    # prompt max -> response max:  a1 2->0 reduce, a2 0->1 unsolicited, a3 1->3 compliance (S persists),
    # a4 0->0 preserve, b1 2->2 preserve, b2 3->1 reduce, b3 missing response label (excluded)
    rows = [
        _row("a1", "A", (0, 0, 2, 0), (0, 0, 0, 0), 1, "q1"),
        _row("a2", "A", (0, 0, 0, 0), (0, 0, 1, 0), 2, "q2"),
        _row("a3", "A", (0, 1, 0, 0), (0, 3, 0, 0), 3, "q3"),
        _row("a4", "A", (0, 0, 0, 0), (0, 0, 0, 0), 3, "q4"),
        _row("b1", "B", (0, 0, 2, 0), (0, 0, 2, 0), 3, "q1"),
        _row("b2", "B", (0, 0, 0, 3), (0, 0, 0, 1), 2, "q2"),
        _row("b3", "B", (0, 0, 0, 0), (0, 0, 0, 0), 3, "q3"),
    ]
    frame = pd.DataFrame(rows)
    frame.loc[6, "response_hate"] = None
    for column in frame.columns:
        if column.startswith(("prompt_", "response_")) and column != "prompt_id":
            frame[column] = frame[column].astype("Int8")
    frame["relevance"] = frame["relevance"].astype("Int8")
    return frame


def test_hand_computed_pooled_and_groups() -> None:
    result = analyze(_table(), by="model", n_boot=0)
    assert result["n_pairs"] == 7 and result["n_excluded_incomplete"] == 1 and result["n_analyzed"] == 6
    pooled = result["pooled"]
    assert (pooled["reduction"]["k"], pooled["preservation"]["k"], pooled["escalation"]["k"]) == (2, 2, 2)
    assert pooled["harmful_prompts"] == 4
    assert pooled["conditional_reduction"]["rate"] == pytest.approx(2 / 4)
    assert pooled["response_harm"]["rate"] == pytest.approx(4 / 6)
    assert pooled["harmful_prompt_compliance"]["rate"] == pytest.approx(3 / 4)
    assert pooled["benign_drift"]["rate"] == pytest.approx(1 / 2)
    assert pooled["escalation_mechanism"] == {"unsolicited_elaboration": 1, "compliance_escalation": 1}
    assert pooled["escalation_by_landing_severity"] == {"1": 1, "2": 0, "3": 1}
    assert pooled["transition_matrix"][2] == [1, 0, 1, 0] and pooled["transition_matrix"][3] == [0, 1, 0, 0]
    sexual = pooled["categories"]["sexual"]
    assert (sexual["harmful_prompts"], sexual["harmful_responses_from_harmful_prompts"]) == (1, 1)
    assert sexual["persistence"]["rate"] == 1.0 and sexual["reduction"]["rate"] == 0.0
    violence = pooled["categories"]["violence"]
    assert violence["persistence"]["rate"] == 0.5 and violence["drift_count"] == 1
    assert violence["drift_up"]["rate"] == pytest.approx(1 / 4)
    assert pooled["categories"]["hate"]["persistence"]["rate"] is None  # no harmful prompts: undefined, not 0
    group_a = result["groups"]["A"]
    assert group_a["n"] == 4 and group_a["escalation"]["k"] == 2
    assert result["groups"]["B"]["conditional_reduction"]["rate"] == 0.5
    rel = pooled["relevance"]["by_transition"]
    assert rel["compliance_escalation"]["counts"] == {"1": 0, "2": 0, "3": 1}
    assert rel["reduction"]["mean"] == pytest.approx(1.5)
    cases = {c["id"]: c["mechanism"] for c in result["escalation_cases"]}
    assert cases == {"a2": "unsolicited_elaboration", "a3": "compliance_escalation"}


def test_matched_comparison_counts() -> None:
    result = analyze(_table(), by="model", n_boot=0, reference="A")
    rows = {r["b"]: r for r in result["comparison"]["metrics"]["escalation"]}
    # shared prompts q1, q2 (b3 excluded): A escalates on q2 only, B on neither
    assert (rows["B"]["n_shared"], rows["B"]["a_only"], rows["B"]["b_only"]) == (2, 1, 0)
    assert rows["B"]["p_exact"] == 1.0


def test_empty_group_and_missing_column() -> None:
    frame = _table()
    frame.loc[:, "response_hate"] = pd.NA
    result = analyze(frame, by="model", n_boot=50)
    assert result["n_analyzed"] == 0
    assert result["pooled"]["reduction"] == {"k": 0, "n": 0, "rate": None, "ci": [None, None]}
    assert result["cluster_bootstrap"]["ci"]["escalation"] == [None, None]
    with pytest.raises(DataError, match="lacks label column 'prompt_hate'"):
        analyze(frame.drop(columns=["prompt_hate"]))
    with pytest.raises(DataError, match="`by` 'family'"):
        analyze(_table(), by="family")


def test_wilson_interval_on_rates_of_independent_pairs() -> None:
    result = analyze(_table(), cluster="none", n_boot=0)
    low, high = result["pooled"]["escalation"]["ci"]
    # Wilson(2, 6) by hand: centre 0.65346, half-width 0.49473, divided by 1.64024
    assert low == pytest.approx(0.0968, abs=1e-4) and high == pytest.approx(0.7000, abs=1e-4)
    assert result["pooled"]["unit"] == {
        **result["pooled"]["unit"],
        "cluster": None,
        "n_items": 6,
        "n_clusters": 6,
        "ci_method": "wilson",
    }


def test_repeated_prompts_get_cluster_bootstrap_intervals() -> None:
    result = analyze(_table(), by="model", n_boot=500)
    pooled = result["pooled"]
    assert pooled["unit"]["n_items"] == 6 and pooled["unit"]["n_clusters"] == 4  # q1, q2 answered twice; q3, q4 once
    assert pooled["unit"]["ci_method"].startswith("cluster bootstrap (500 resamples of 4 clusters)")
    # escalation per cluster (q1: 0 of 2, q2: 1 of 2, q3: 1 of 1, q4: 0 of 1)
    # and the percentile interval must be the bootstrap's, not Wilson's [0.0968, 0.7000]
    assert pooled["escalation"]["ci"] == result["cluster_bootstrap"]["ci"]["escalation"]
    assert pooled["escalation"]["ci"][0] != pytest.approx(0.0968, abs=1e-3)
    # within one model each prompt occurs once: Wilson stays
    assert result["groups"]["A"]["unit"]["ci_method"] == "wilson"
    dropped = analyze(_table(), n_boot=0)
    assert dropped["pooled"]["escalation"]["ci"] == [None, None] and dropped["pooled"]["unit"]["ci_method"].startswith(
        "none"
    )


MINI_EVAL = SHARED / "pairedsafety" / "analysis" / "public_mini_eval"


needs_data = pytest.mark.shared_data(MINI_EVAL)


@needs_data
def test_reproduces_published_mini_eval(cli: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "pairs.jsonl"
    assert cli.invoke(app, ["data", "import", "pairedsafety", str(MINI_EVAL), "-o", str(out)]).exit_code == 0
    # the paper compares grok-4 with each model: the reference is named (the default is the first group, fixed a priori)
    result = cli.invoke(app, ["analyze", str(out), "--by", "model", "--reference", "grok-4", "--n-boot", "2000",
                                 "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    analysis = json.loads((tmp_path / "a" / "analysis.json").read_text())
    pooled = analysis["pooled"]
    assert analysis["n_analyzed"] == 3600
    assert [pooled[k]["k"] for k in ("reduction", "preservation", "escalation")] == [1481, 1906, 213]
    assert pooled["conditional_reduction"]["rate"] == pytest.approx(0.8660818713450292)
    assert pooled["escalation_mechanism"] == {"unsolicited_elaboration": 190, "compliance_escalation": 23}
    assert pooled["escalation_by_landing_severity"] == {"1": 115, "2": 78, "3": 20}
    published_categories = {"hate": (546, 40), "sexual": (96, 26), "violence": (1026, 211), "self_harm": (132, 3)}
    for category, (harmful, persisted) in published_categories.items():
        cat = pooled["categories"][category]
        assert (cat["harmful_prompts"], cat["harmful_responses_from_harmful_prompts"]) == (harmful, persisted)
    published_models = {  # reduction, preservation, escalation, conditional reduction (results.md)
        "llama-3.3-70b": (0.4017, 0.545, 0.0533, 0.8456), "gpt-oss-120b": (0.4433, 0.5083, 0.0483, 0.9333),
        "deepseek-v3.1": (0.41, 0.5117, 0.0783, 0.8632), "gpt-4.1": (0.4117, 0.5533, 0.035, 0.8667),
        "gpt-5": (0.425, 0.5317, 0.0433, 0.8947), "grok-4": (0.3767, 0.5267, 0.0967, 0.793),
    }
    for model, expected in published_models.items():
        stats = analysis["groups"][model]
        got = [stats[k]["rate"] for k in ("reduction", "preservation", "escalation", "conditional_reduction")]
        assert got == pytest.approx(list(expected), abs=5e-5)
    comparison = analysis["comparison"]
    assert comparison["reference"] == "grok-4"
    deepseek = next(r for r in comparison["metrics"]["escalation"] if r["b"] == "deepseek-v3.1")
    assert (deepseek["a_only"], deepseek["b_only"]) == (24, 13)
    assert deepseek["p_holm"] == pytest.approx(0.09887174959294498)
    oss = next(r for r in comparison["metrics"]["response_harm"] if r["b"] == "gpt-oss-120b")
    assert oss["p_holm"] == pytest.approx(3.5444560160384975e-15, rel=1e-6)
    low, high = analysis["cluster_bootstrap"]["ci"]["escalation"]
    assert low == pytest.approx(0.0453, abs=0.003) and high == pytest.approx(0.0742, abs=0.003)
