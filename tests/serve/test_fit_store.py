"""The embedded graders' fits are kept on disk as data and never unpickled: read back, they answer exactly as freshly
fitted ones; a planted, cut, edited or foreign store is fitted again with a note, never a crash and never code run;
pickled fits an earlier harness left are removed, and nothing else is."""

from __future__ import annotations

import io
import json
import pickle
import shutil
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.analysis.probes import PADDING
from harness.core.atomic import atomic_path
from harness.core.errors import DataError
from harness.core.ownership import kind_of
from harness.io.pairs import load_pairs
from harness.serve import fit_store
from harness.serve.graders import FOLDS, PROFILES, CrossFitted, Exemplar, InContextGrader, K, PooledModel, build_graders
from harness.serve.runner import ServerHandle
from tests.helpers import SAMPLE

NEW_TEXTS = ["A wholly new sentence about growing tomatoes on a sunny balcony in spring.",
             "How do I make a bomb at home?", "I can't help with hurting anyone; please call a crisis line.", "ok"]


def _texts() -> list[str]:
    """A quarter of the sample's texts, near copies of others and new texts (each judged by a fold's model, or one
    fitted without several folds)."""
    frame = load_pairs(SAMPLE)
    texts = [t for side in ("prompt", "response") for t in frame[side].tolist() if isinstance(t, str)]
    return texts[::4] + [t.upper() + PADDING for t in texts[1::25]] + NEW_TEXTS


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Graders fitted afresh (their fits kept in one folder) and graders read back from a copy of those stores."""
    fitted_in, copied_to = tmp_path_factory.mktemp("fitted"), tmp_path_factory.mktemp("copied")
    fresh_notes: list[str] = []
    fresh = build_graders(SAMPLE, list(PROFILES), cache_dir=fitted_in, notes=fresh_notes)
    files = {path.name.split("-")[2]: path for path in fitted_in.glob("*.npz")}
    for path in files.values():
        shutil.copy(path, copied_to / path.name)
    warm_notes: list[str] = []
    warm = build_graders(SAMPLE, list(PROFILES), cache_dir=copied_to, notes=warm_notes)
    return {"fresh": fresh, "warm": warm, "files": files, "fitted_in": fitted_in, "notes": fresh_notes + warm_notes}


def _same_answers(one: InContextGrader, other: InContextGrader, texts: list[str]) -> int:
    """Assert both graders give the very same probabilities on every text, both sides; how many were compared."""
    shots = [Exemplar("How do I bake bread?", "prompt", (0, 0, 0, 0)),
             Exemplar("Kill them all.", "response", (0, 0, 3, 0))]
    compared = 0
    for side in ("prompt", "response"):
        for i, text in enumerate(texts):
            exemplars = shots if i % 10 == 0 else []
            ours, theirs = one.probabilities(side, text, exemplars), other.probabilities(side, text, exemplars)
            assert np.array_equal(ours, theirs), (one.profile.name, side, text)
            compared += 1
    return compared


def test_graders_read_back_answer_exactly_as_freshly_fitted_ones(stores: dict[str, Any]) -> None:
    texts = _texts()
    compared = sum(_same_answers(stores["fresh"][name], stores["warm"][name], texts) for name in PROFILES)
    assert compared == len(PROFILES) * 2 * len(texts) > 1000
    assert stores["notes"] == []  # fitted and kept, then read back: nothing to say
    assert sorted(stores["files"]) == ["chars", "small"] and not list(stores["fitted_in"].glob("*.pkl"))
    for path in stores["files"].values():
        assert kind_of(path) == "fit-cache"  # marked as harness's, so a later harness may replace it
        with np.load(path, allow_pickle=False) as npz:  # plain arrays only: nothing in it needs a pickle
            assert all(npz[name].dtype in (np.float64, np.uint8) for name in npz.files)


def test_a_warm_start_answers_from_the_store(stores: dict[str, Any], tmp_path: Path) -> None:
    """The store is what a warm start reads (not a silent refit): a store with other numbers gives other answers."""
    small = stores["files"]["small"]
    models = fit_store.read(small, key=_key(small), folds=FOLDS, levels=K,
                            new_vectorizer=lambda: PooledModel.new_vectorizer("small"))
    for _, heads in models.values():
        for head in heads:
            if not isinstance(head, int):
                head.intercept_ = head.intercept_ + 3.0 * np.arange(head.intercept_.size)  # leans to the top
    fit_store.write(tmp_path / small.name, models, key=_key(small))
    notes: list[str] = []
    edited = build_graders(SAMPLE, ["harness-small"], cache_dir=tmp_path, notes=notes)["harness-small"]
    fresh = stores["fresh"]["harness-small"]
    differ = sum(not np.allclose(edited.probabilities("prompt", t), fresh.probabilities("prompt", t))
                 for t in NEW_TEXTS)
    assert notes == [] and differ == len(NEW_TEXTS)


def test_a_category_of_two_classes_or_one_is_read_back_as_it_was_fitted(tmp_path: Path) -> None:
    """Beside four-class regressions, a category with two classes (one row of coefficients) and one every text had."""
    texts = [f"{word} text number {i} about {topic}" for i, (word, topic) in
             enumerate((w, t) for w in ("calm", "angry", "quiet", "loud") for t in ("bread", "knives", "rivers"))]
    labels = np.array([[i % 2, 0, i % 4, (i // 3) % 4] for i in range(len(texts))])
    sides = ["prompt", "response"] * (len(texts) // 2)
    models = {fold: PooledModel(texts, sides, labels, "small") for fold in range(2)}
    assert [type(m).__name__ for m in models[0].models][:2] == ["LogisticRegression", "int"]
    assert models[0].models[0].coef_.shape[0] == 1  # two classes: one row
    store = tmp_path / "store.npz"
    fit_store.write(store, {f: (m.vectorizer, m.models) for f, m in models.items()}, key="k")
    read = fit_store.read(store, key="k", folds=2, levels=K, new_vectorizer=lambda: PooledModel.new_vectorizer("small"))
    for fold, model in models.items():
        again = PooledModel.restored(*read[fold])
        for text in [*texts, "a new text about knives"]:
            for side in ("prompt", "response"):
                vector = model.vectorizer.transform([text])
                assert np.array_equal(model.probabilities(vector, side),
                                      again.probabilities(again.vectorizer.transform([text]), side))


# a store that is not one ---------------------------------------------------------------------------------------------

def _key(store: Path) -> str:
    with np.load(store, allow_pickle=False) as npz:
        return str(json.loads(npz["meta"].tobytes())["key"])


def _edited(store: Path, change: Callable[[dict[str, np.ndarray], dict[str, Any]], None], *,
            header: bytes | None = None) -> bytes:
    """The store's bytes after ``change`` edits its arrays and header (written as a tamperer would, with numpy)."""
    with np.load(store, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    meta = json.loads(arrays.pop("meta").tobytes())
    change(arrays, meta)
    out = io.BytesIO()
    np.savez(out, meta=np.frombuffer(header or json.dumps(meta).encode(), dtype=np.uint8), **arrays)
    return out.getvalue()


class _Planted:
    """A pickle that creates a file when it is unpickled: the attack a pickled cache invites."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def _set(arrays: dict[str, np.ndarray], name: str, value: np.ndarray) -> None:
    arrays[name] = value


#: Each a damaged, foreign or tampered store, and what the refusal says.
TAMPERED: list[tuple[str, Callable[[Path, Path], bytes], str]] = [
    ("a planted pickle", lambda store, tmp: pickle.dumps(_Planted(tmp / "ran")), "not an .npz file"),
    ("a pickle inside the zip", lambda store, tmp: _edited(store, lambda a, m: _set(
        a, "fold0_idf", np.array([_Planted(tmp / "ran")], dtype=object))), "Object arrays cannot be loaded"),
    ("cut short", lambda store, tmp: store.read_bytes()[: store.stat().st_size // 2], "not a fit store"),
    ("empty", lambda store, tmp: b"", "not an .npz file"),
    ("larger than any store", lambda store, tmp: b"PK\x03\x04" + bytes(fit_store.MAX_BYTES), "larger than any store"),
    ("a member that unpacks past any store", lambda store, tmp: (lambda out: (
        np.savez_compressed(out, meta=np.zeros(5_000_000)), out.getvalue())[1])(io.BytesIO()), "unpack larger"),
    ("one .npy array", lambda store, tmp: (lambda out: (np.save(out, np.zeros(3)), out.getvalue())[1])(io.BytesIO()),
     "not an .npz file"),
    ("coefficients of the wrong shape", lambda store, tmp: _edited(store, lambda a, m: _set(
        a, "fold0_cat0_coef", a["fold0_cat0_coef"][:, :-1])), "fold0_cat0_coef: float64 of shape"),
    ("a vocabulary pointing past the arrays", lambda store, tmp: _edited(
        store, lambda a, m: m["folds"]["2"]["terms"].append("zzzz")), "fold2_idf: float64 of shape"),
    ("idf of another type", lambda store, tmp: _edited(store, lambda a, m: _set(
        a, "fold1_idf", a["fold1_idf"].astype(np.float32))), "fold1_idf: float32"),
    ("a coefficient not a number", lambda store, tmp: _edited(store, lambda a, m: _set(
        a, "fold3_cat1_intercept", np.full_like(a["fold3_cat1_intercept"], np.nan))), "not finite"),
    ("a term twice", lambda store, tmp: _edited(store, lambda a, m: m["folds"]["0"]["terms"].__setitem__(
        1, m["folds"]["0"]["terms"][0])), "distinct terms"),
    ("a class past the scale", lambda store, tmp: _edited(
        store, lambda a, m: m["folds"]["0"]["heads"][0].__setitem__("classes", [0, 1, 2, 9])), "classes must be"),
    ("a class that is not a number", lambda store, tmp: _edited(
        store, lambda a, m: m["folds"]["0"]["heads"][0].__setitem__("classes", ["os", "system", 2, 3])),
     "classes must"),
    ("a fold missing", lambda store, tmp: _edited(store, lambda a, m: m["folds"].pop("4")), "folds 0 to 4"),
    ("an array no model uses", lambda store, tmp: _edited(store, lambda a, m: _set(a, "extra", np.zeros(2))),
     "arrays no model uses"),
    ("another table's fit", lambda store, tmp: _edited(store, lambda a, m: m.__setitem__("key", "incontext-5-small-0")),
     "it holds fit"),
    ("other library versions", lambda store, tmp: _edited(
        store, lambda a, m: m["libraries"].__setitem__("scikit-learn", "0.1")), "written with"),
    ("another format", lambda store, tmp: _edited(store, lambda a, m: m.__setitem__("format", "other")),
     "not a fit store of this harness"),
    ("a header that is not JSON", lambda store, tmp: _edited(store, lambda a, m: None, header=b'{"format": x'),
     "not a usable fit store"),
    ("a header that is not text", lambda store, tmp: _edited(store, lambda a, m: None, header=b"\xff\xfe"),
     "not a usable fit store: 'ascii' codec"),
]


@pytest.mark.parametrize(("case", "make", "said"), TAMPERED, ids=[t[0] for t in TAMPERED])
def test_a_store_that_is_not_one_is_refused_naming_why(stores: dict[str, Any], tmp_path: Path, case: str,
                                                      make: Callable[[Path, Path], bytes], said: str) -> None:
    small = stores["files"]["small"]
    planted = tmp_path / small.name
    planted.write_bytes(make(small, tmp_path))
    with pytest.raises(DataError) as refused:
        fit_store.read(planted, key=_key(small), folds=FOLDS, levels=K,
                       new_vectorizer=lambda: PooledModel.new_vectorizer("small"))
    assert said in str(refused.value) and str(planted) in str(refused.value)
    assert not (tmp_path / "ran").exists()  # nothing in the file was run


@pytest.mark.parametrize("case", ["a planted pickle", "cut short"])
def test_a_server_whose_store_is_not_one_fits_again_and_runs_nothing(
        stores: dict[str, Any], make_server: Callable[..., ServerHandle], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    make = next(m for name, m, _ in TAMPERED if name == case)
    small = stores["files"]["small"]
    folder = tmp_path / "fits"
    folder.mkdir()
    planted = folder / small.name
    planted.write_bytes(make(small, tmp_path))
    monkeypatch.setenv("HARNESS_FIT_CACHE", str(folder))
    handle = make_server(model_names=["harness-small"])
    with urllib.request.urlopen(handle.base_url.removesuffix("/v1") + "/health", timeout=600) as response:
        health = json.loads(response.read())
    assert health["ready"] is True and not (tmp_path / "ran").exists()
    assert any(str(planted) in n and "fitted again" in n for n in health["notes"]), health["notes"]
    assert any("the fit was not kept" in n and "harness did not write it" in n for n in health["notes"])
    assert planted.read_bytes() == make(small, tmp_path)  # a file harness did not write is left as it was
    served = handle.endpoint.graders["harness-small"]
    assert _same_answers(served, stores["fresh"]["harness-small"], _texts()[::3]) > 100
    if case == "a planted pickle":  # the bait was live: unpickled, it would have made the file
        pickle.loads(planted.read_bytes())
        assert (tmp_path / "ran").exists()


# pickles an earlier harness left -------------------------------------------------------------------------------------

def test_pickled_fits_an_earlier_harness_wrote_are_removed_and_nothing_else(stores: dict[str, Any],
                                                                           tmp_path: Path) -> None:
    small = stores["files"]["small"]
    shutil.copy(small, tmp_path / small.name)  # a store to read: no fit needed
    fit = object.__new__(CrossFitted)  # what an earlier harness pickled (only its first bytes are looked at)
    (tmp_path / "incontext-4-small-0123456789abcdef.pkl").write_bytes(pickle.dumps(fit, protocol=4))
    (tmp_path / "incontext-3-chars-fedcba9876543210.pkl").write_bytes(pickle.dumps(fit, protocol=2))
    with atomic_path(tmp_path / "marked.pkl", kind="fit-cache") as tmp:  # recorded as harness's fit
        tmp.write_bytes(b"\x80\x04N.")
    kept = {"incontext-4-small-aaaaaaaaaaaaaaaa.pkl": pickle.dumps({"not": "a fit"}),  # harness's name, not its content
            "my-model.pkl": pickle.dumps(fit),  # harness's content, not its name
            "notes.txt": b"the user's"}
    for name, data in kept.items():
        (tmp_path / name).write_bytes(data)
    notes: list[str] = []
    graders = build_graders(SAMPLE, ["harness-small"], cache_dir=tmp_path, notes=notes)
    assert notes == [f"removed 3 pickled fit(s) an earlier harness wrote in {tmp_path} (never read again)"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".harness-owned.json") == sorted([*kept, small.name])
    assert all((tmp_path / name).read_bytes() == data for name, data in kept.items())
    assert _same_answers(graders["harness-small"], stores["fresh"]["harness-small"], NEW_TEXTS) == 2 * len(NEW_TEXTS)
