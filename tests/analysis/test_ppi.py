"""The prediction-powered estimator of a share, equal to the ppi_py reference where the designs meet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.io.pairs import write_pairs


@pytest.mark.slow
def test_ppi_matches_the_ppi_python_reference(cli: CliRunner, tmp_path: Path) -> None:
    """With every pair its own cluster and uniform sampling, ``analyze --human`` is the PPI mean estimator
    of ``ppi-python`` at the same λ, and its bootstrap-t interval is within 10 % of that package's CLT interval."""
    from ppi_py import ppi_mean_ci, ppi_mean_pointestimate

    rng = np.random.default_rng(3)
    n_all, n_labelled = 3000, 600
    truth_p = rng.choice([0, 1, 2, 3], n_all, p=[0.5, 0.2, 0.2, 0.1])
    truth_r = np.where(rng.random(n_all) < 0.3, truth_p, 0)

    def noisy(x: np.ndarray) -> np.ndarray:
        return np.where(rng.random(n_all) < 0.2, np.clip(x + rng.choice([-1, 1], n_all), 0, 3), x)

    grader_p, grader_r = noisy(truth_p), noisy(truth_r)

    def table(p: np.ndarray, r: np.ndarray) -> pd.DataFrame:
        frame = pd.DataFrame(
            {"id": [f"i{i}" for i in range(n_all)], "prompt": [f"prompt {i}" for i in range(n_all)], "response": "r"}
        )
        for side in ("prompt", "response"):
            for category in ("hate", "sexual", "violence", "self_harm"):
                frame[f"{side}_{category}"] = 0
        frame["prompt_violence"], frame["response_violence"] = p, r
        return frame

    labelled = rng.choice(n_all, n_labelled, replace=False)
    write_pairs(table(grader_p, grader_r), tmp_path / "graded.jsonl")
    write_pairs(table(truth_p, truth_r).iloc[labelled], tmp_path / "human.jsonl")
    result = cli.invoke(app, ["analyze", str(tmp_path / "graded.jsonl"), "--human", str(tmp_path / "human.jsonl"),
                                 "--cluster", "none", "--n-boot", "2000", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    corrected = json.loads((tmp_path / "analysis.json").read_text())["corrected"]
    for share, (grader, human) in {
        "response_harm": (grader_r >= 1, truth_r >= 1),
        "prompt_harm": (grader_p >= 1, truth_p >= 1),
        "reduction": (grader_r < grader_p, truth_r < truth_p),
    }.items():
        y_hat, y = grader.astype(float), human.astype(float)
        lam = corrected["lambdas"][share]
        reference = float(np.ravel(ppi_mean_pointestimate(y[labelled], y_hat[labelled], y_hat, lam=lam))[0])
        assert corrected["corrected"][share] == pytest.approx(reference, abs=1e-6)  # λ is stored to 4 decimals
        low, high = (
            float(np.ravel(end)[0]) for end in ppi_mean_ci(y[labelled], y_hat[labelled], y_hat, alpha=0.05, lam=lam)
        )
        ours = corrected["corrected_ci"][share]
        assert (ours[1] - ours[0]) == pytest.approx(high - low, rel=0.10), share
        assert abs((ours[0] + ours[1]) / 2 - (low + high) / 2) < 0.1 * (high - low)
    # escalation is rare here and over-corrected below 0: shown as 0, and said
    assert corrected["corrected"]["escalation"] == 0.0
    assert any(
        w.startswith("corrected below 0 or above 1 and shown clipped: escalation (-") for w in corrected["warnings"]
    )
