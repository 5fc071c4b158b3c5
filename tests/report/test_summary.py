"""The report's first screen: corrected shares that add up, or a note giving their sum."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.analysis.transitions import analyze
from harness.report.summary import summary_section
from validation.studies import Setting, study

PARTITION = ("reduction", "preservation", "escalation")


def _table(prompt: np.ndarray, response: np.ndarray) -> pd.DataFrame:
    n = prompt.size
    frame = pd.DataFrame({"id": [f"i{i}" for i in range(n)], "prompt": [f"prompt {i}" for i in range(n)], "response": "r"})
    for side in ("prompt", "response"):
        for category in ("hate", "sexual", "violence", "self_harm"):
            frame[f"{side}_{category}"] = 0
    frame["prompt_violence"], frame["response_violence"] = prompt, response
    return frame


def test_corrected_shares_that_add_up_need_no_note() -> None:
    graded, human = study(Setting(rho=0.4), 4, labelled_clusters=100)
    analysis = analyze(graded, human=human, n_boot=100, seed=4)
    assert analysis.corrected is not None
    assert abs(sum(analysis.corrected.corrected[s] for s in PARTITION) - 1) < 1e-12
    section = summary_section([analysis])
    assert section is not None and not any("add up to" in line for line in section.paragraphs)


def test_a_share_clipped_at_zero_gets_a_note_with_the_sum() -> None:
    """A rare escalation over-corrected below 0 and shown as 0: the three no longer add up, and the summary says so."""
    rng = np.random.default_rng(3)
    truth_p = rng.choice([0, 1, 2, 3], 3000, p=[0.5, 0.2, 0.2, 0.1])
    truth_r = np.where(rng.random(3000) < 0.3, truth_p, 0)
    noisy = lambda x: np.where(rng.random(3000) < 0.2, np.clip(x + rng.choice([-1, 1], 3000), 0, 3), x)
    labelled = rng.choice(3000, 600, replace=False)
    analysis = analyze(_table(noisy(truth_p), noisy(truth_r)), human=_table(truth_p, truth_r).iloc[labelled], cluster="none",
                       n_boot=100, seed=1)
    assert analysis.corrected is not None and analysis.corrected.corrected["escalation"] == 0.0
    total = sum(analysis.corrected.corrected[s] for s in PARTITION)
    section = summary_section([analysis])
    assert section is not None
    assert any(f"add up to {100 * total:.1f}%, not 100%" in line for line in section.paragraphs), section.paragraphs
