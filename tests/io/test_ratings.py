"""Several raters' labels (wide, harm layout, long) read as codes per scope, with located errors."""

from __future__ import annotations

import json
from pathlib import Path

import krippendorff
import numpy as np
import pandas as pd
import pytest

from harness.io.ratings import read_ratings
from harness.io.sample import SAMPLE_RATERS, ratings_path
from tests.helpers import alpha_of, exit_and_output, rater_study


def test_long_table_gives_the_same_result_as_the_wide_one(tmp_path: Path) -> None:
    wide = rater_study(11, n=90)
    wide.loc[3, "a2"] = None  # a missing rating
    wide.to_csv(tmp_path / "wide.csv", index=False)
    rows = [{"id": r["id"], "prompt_id": r["prompt_id"], "who": who, "verdict": r[who]}
            for _, r in wide.iterrows() for who in ("a1", "a2", "a3", "good") if isinstance(r[who], str)]
    pd.DataFrame(rows).to_csv(tmp_path / "long.csv", index=False)
    outputs = []
    for name, args in (
        ("wide", ["--raters", "a1,a2,a3"]),
        ("long", ["--rater-column", "who", "--label-column", "verdict"]),
    ):
        code, output = exit_and_output(
            "agreement",
            str(tmp_path / f"{name}.csv"),
            *args,
            "--grader",
            "good",
            "--n-boot",
            "50",
            "-o",
            str(tmp_path / f"{name}.json"),
        )
        assert code == 0, output
        outputs.append(json.loads((tmp_path / f"{name}.json").read_text()))
    wide_result, long_result = outputs
    assert wide_result["scopes"]["label"]["n_ratings"] == 3 * 90 - 1
    for key in ("alpha", "alpha_ci", "pairs", "graders"):
        assert wide_result["scopes"]["label"][key] == long_result["scopes"]["label"][key]


@pytest.mark.parametrize(("args", "message"), [
    (["--raters", "a1"], "expected at least two rater columns"),
    (["--raters", "a1,zz"], "no column 'zz'"),
    (["--raters", "zz,yy"], "neither columns nor prefixes"),
    (["--raters", "a1,a1,a2"], "--raters names 'a1' twice"),
    (["--raters", "a1,a2,a3", "--grader", "a1"], "'a1' is both among --raters and a --grader"),
    (["--raters", "a1,a2", "--grader", "nope"], "--grader 'nope'"),
    (["--raters", "a1,a2", "--level", "ratio"], "--level 'ratio'"),
    (["--raters", "a1,a2", "--level", "ordinal"], "is not a number"),
    (["--raters", "a1,a2", "--epsilon", "1.5"], "--epsilon 1.5"),
])
def test_bad_input_is_a_located_error(tmp_path: Path, args: list[str], message: str) -> None:
    table = tmp_path / "t.csv"
    rater_study(3, n=40).to_csv(table, index=False)
    out = tmp_path / "a.json"
    code, output = exit_and_output("agreement", str(table), *args, "-o", str(out))
    assert code == 2, output
    assert message in " ".join(output.split()), output
    assert not out.exists()


def test_scale_is_read_from_the_labels(tmp_path: Path) -> None:
    frame = rater_study(4, n=60)
    codes = {"c0": 1.5, "c1": 2.5, "c2": 4.0}
    decimals = frame.assign(**{f"a{j}": frame[f"a{j}"].map(codes) for j in (1, 2, 3)})
    decimals.to_csv(tmp_path / "decimals.csv", index=False)
    assert read_ratings(tmp_path / "decimals.csv", raters=["a1", "a2", "a3"]).level == "interval"
    stray = decimals.astype({"a2": object})
    stray.loc[7, "a2"] = "x"
    stray.to_csv(tmp_path / "stray.csv", index=False)
    code, output = exit_and_output(
        "agreement", str(tmp_path / "stray.csv"), "--raters", "a1,a2,a3", "-o", str(tmp_path / "a.json")
    )
    flat = " ".join(output.split())
    assert (
        code == 2
        and "column 'a2', item 'i7'" in flat
        and "text among numeric labels" in flat
        and "--level nominal" in flat
    )
    code, output = exit_and_output(
        "agreement",
        str(tmp_path / "stray.csv"),
        "--raters",
        "a1,a2,a3",
        "--level",
        "nominal",
        "--n-boot",
        "0",
        "-o",
        str(tmp_path / "a.json"),
    )
    assert code == 0, output


def test_long_table_raters_must_be_named_when_given(tmp_path: Path) -> None:
    rows = [
        {"id": f"i{i}", "who": who, "verdict": (i + k) % 3}
        for i in range(40)
        for k, who in enumerate(("a1", "a2", "a3", "model"))
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "long.csv", index=False)
    args = [
        "agreement",
        str(tmp_path / "long.csv"),
        "--rater-column",
        "who",
        "--label-column",
        "verdict",
        "--n-boot",
        "0",
    ]
    code, output = exit_and_output(*args, "--raters", "a1,a2,a3", "-o", str(tmp_path / "a.json"))
    assert code == 2 and "also holds ['model']" in " ".join(output.split())
    code, output = exit_and_output(*args, "--raters", "a1,a2,a3", "--grader", "model", "-o", str(tmp_path / "a.json"))
    assert code == 0, output
    assert json.loads((tmp_path / "a.json").read_text())["raters"] == ["a1", "a2", "a3"]


def test_harm_label_outside_the_scale_names_column_and_item(tmp_path: Path) -> None:
    rows = [json.loads(line) for line in Path(ratings_path()).read_text().splitlines()]
    rows[4]["ann2_response_violence"] = 5
    table = tmp_path / "r.jsonl"
    table.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, output = exit_and_output(
        "agreement", str(table), "--raters", "ann1,ann2,ann3", "-o", str(tmp_path / "a.json")
    )
    assert code == 2
    flat = " ".join(output.split())
    assert "'ann2_response_violence'" in flat and repr(rows[4]["id"]) in flat and "outside 0-3" in flat


def test_sample_ratings_harm_layout() -> None:
    ratings = read_ratings(ratings_path(), raters=list(SAMPLE_RATERS), final="canonical")
    assert ratings.level == "ordinal" and len(ratings.ids) == 120 and np.unique(ratings.clusters).size == 40
    assert set(ratings.scopes) == {f"{s}.{c}" for s in ("prompt", "response")
                                   for c in ("hate", "sexual", "violence", "self_harm", "max")}
    assert int(np.isnan(ratings.scopes["prompt.hate"][:, 2]).sum()) == 12  # ann3 left 12 pairs unrated
    matrix = ratings.scopes["response.max"]
    reference = krippendorff.alpha(reliability_data=matrix.T, level_of_measurement="ordinal", value_domain=[0, 1, 2, 3])
    assert alpha_of(matrix, "ordinal", 4) == pytest.approx(reference, abs=1e-9)
