"""A run or a table against human labels: the scale the labels make, and the prompt/response asymmetry with its paired
interval."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.analysis.calibration import asymmetry
from harness.analysis.table_calibration import calibrate_table
from harness.cli.app import app


def test_an_ordinal_label_outside_the_reference_joins_the_scale() -> None:
    from sklearn.metrics import cohen_kappa_score as sk_kappa

    rng = np.random.default_rng(3)
    gold = rng.integers(0, 3, 200)  # the reference never says 3 ...
    pred = gold.copy()
    pred[rng.choice(200, 50, replace=False)] = 3  # ... the grader says 3 on a quarter of the rows
    r = calibrate_table(
        pd.DataFrame({"id": [str(i) for i in range(200)], "prompt": "p", "g": gold, "p": pred}), "g", "p", n_boot=0
    )
    assert r.n == 200 and r.labels == [0, 1, 2, 3]
    assert r.kappa == pytest.approx(sk_kappa(gold, pred)) and r.kappa < 0.95
    assert r.kappa_quadratic == pytest.approx(sk_kappa(gold, pred, weights="quadratic"))


def test_asymmetry_gap_and_paired_ci() -> None:
    n = 40
    gold = np.ones((n, 4))
    pred_p = np.ones((n, 4))  # prompt side finds everything
    pred_r = np.ones((n, 4))
    pred_r[: n // 2] = 0  # response side misses half
    out = asymmetry(gold, pred_p, gold, pred_r, n_boot=200, seed=1)
    assert out["overall"]["prompt_recall"] == 1.0 and out["overall"]["response_recall"] == 0.5
    assert out["overall"]["recall_gap"] == 0.5
    low, high = out["overall"]["recall_gap_ci"]
    assert 0.3 < low < 0.5 < high < 0.7


def test_an_integer_scale_whose_reference_lacks_its_lowest_label_keeps_threshold_1(
    cli: CliRunner, tmp_path: Path
) -> None:
    """A simulated study whose gold labels happen to hold no 0 (found by make validate): the grader's 0s put 0 on the
    scale."""
    table = tmp_path / "t.csv"
    table.write_text("id,human,grader\n" + "".join(f"{k},{1 + k % 3},{k % 4}\n" for k in range(12)))
    result = cli.invoke(
        app, ["calibrate", str(table), "--gold", "human", "--pred", "grader", "--n-boot", "0", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["labels"] == [0, 1, 2, 3]
    only_high = tmp_path / "h.csv"
    only_high.write_text("id,human,grader\n" + "".join(f"{k},{2 + k % 2},{2 + k % 2}\n" for k in range(6)))
    refused = cli.invoke(app, ["calibrate", str(only_high), "--gold", "human", "--pred", "grader", "--n-boot", "0"])
    assert refused.exit_code == 2 and "--labels" in refused.output and "0,1,2,3" in refused.output
