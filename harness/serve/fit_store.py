"""Fitted embedded graders kept on disk as data, never as objects (issue 38: never unpickle what is read from disk).

A store is one ``.npz`` file: plain float arrays and a JSON header, read with ``allow_pickle=False`` and checked
whole (format, key, library versions, names, types, shapes, finite numbers, a vocabulary that fits its arrays)
before anything is built from it. A file planted in the cache folder, cut short or edited is a :class:`DataError`,
which the caller turns into a fresh fit: nothing in the file is ever called, imported or looked up by name.

Only what is slow to fit is kept: for each fold's model, its TF-IDF vocabulary and idf weights, and for each
category its logistic regression's classes, coefficients and intercepts (or the one class every text had). Those
regressions are nine tenths of a fit; the rest (the item list, the shingles, the similarity and words vectorisers)
is rebuilt from the fit table when read.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.constants import CATEGORIES
from ..core.errors import DataError

#: What a store's header says it is; bump when the layout changes (older stores are then refitted and replaced).
FORMAT = "harness-fit-store-1"
#: A store is about 1 MB whatever the table's size (vocabularies are capped); anything far larger is not one.
MAX_BYTES = 32 * 2**20
_ZIP = b"PK\x03\x04"
#: How an earlier harness named the fits it pickled, and the class they held.
_PICKLED_FIT = re.compile(r"incontext-\d+-[a-z]+-[0-9a-f]{16}\.pkl")
_PICKLED_CLASS = ("harness.serve.graders", "CrossFitted")
_META = "meta"
#: A fold's model: its fitted vectoriser and, per category, a fitted classifier or the one class all texts had.
FoldModel = tuple[Any, list[Any]]


def libraries() -> dict[str, str]:
    """The versions of the libraries a fit depends on: a store another version wrote is fitted afresh."""
    import scipy
    import sklearn

    return {"numpy": np.__version__, "scipy": scipy.__version__, "scikit-learn": sklearn.__version__}


def store_path(folder: str | Path, key: str) -> Path:
    """Where the store of fit ``key`` lies in ``folder``: one file per key and set of library versions (two
    environments sharing a cache folder keep a store each rather than replacing each other's)."""
    tag = hashlib.sha256(json.dumps(libraries(), sort_keys=True).encode()).hexdigest()[:8]
    return Path(folder) / f"{key}-{tag}.npz"


def write(path: Path, models: Mapping[int, FoldModel], *, key: str) -> None:
    """Write the fold models' fitted parameters to ``path`` (atomically; marked as harness's ``fit-cache``).

    Raises what writing may raise (an OSError, or a ConfigError when a file harness did not write is in the way).
    """
    from ..core.atomic import atomic_path

    arrays: dict[str, np.ndarray] = {}
    folds: dict[str, Any] = {}
    for fold, (vectorizer, heads) in sorted(models.items()):
        terms = [""] * len(vectorizer.vocabulary_)
        for term, column in vectorizer.vocabulary_.items():
            terms[column] = term
        arrays[f"fold{fold}_idf"] = np.asarray(vectorizer.idf_, dtype=np.float64)
        described: list[dict[str, Any]] = []
        for j, head in enumerate(heads):
            if isinstance(head, int):
                described.append({"constant": head})
                continue
            described.append({"classes": [int(c) for c in head.classes_]})
            arrays[f"fold{fold}_cat{j}_coef"] = np.asarray(head.coef_, dtype=np.float64)
            arrays[f"fold{fold}_cat{j}_intercept"] = np.asarray(head.intercept_, dtype=np.float64)
        folds[str(fold)] = {"terms": terms, "heads": described}
    meta = {"format": FORMAT, "key": key, "libraries": libraries(), "folds": folds}
    arrays[_META] = np.frombuffer(json.dumps(meta, ensure_ascii=True).encode("ascii"), dtype=np.uint8)
    with atomic_path(path, kind="fit-cache") as tmp, tmp.open("wb") as handle:
        np.savez(handle, allow_pickle=False, **arrays)


def read(path: Path, *, key: str, folds: int, levels: int, new_vectorizer: Callable[[], Any]) -> dict[int, FoldModel]:
    """The fold models stored at ``path``, rebuilt on ``new_vectorizer()`` (the caller's trusted settings: none are
    read from the file), or a DataError saying why the file is not a store of fit ``key``."""
    try:
        arrays, meta = _arrays(path)
        return _rebuilt(_checked(arrays, meta, key=key, folds=folds, levels=levels), new_vectorizer)
    except DataError:
        raise
    except ValueError as exc:
        raise DataError(f"not a usable fit store: {exc}", path=str(path)) from None
    except Exception as exc:  # a damaged zip, a bad header, a wrong type: whatever the bytes hold, never a crash
        raise DataError(f"not a fit store ({type(exc).__name__}: {exc})", path=str(path)) from None


def _arrays(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Every array in the file (checked for size before reading) and its JSON header."""
    if not path.is_file():
        raise DataError("not a fit store (not a file)", path=str(path))
    with path.open("rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES or not data.startswith(_ZIP):
        raise DataError("not a fit store (not an .npz file, or larger than any store)", path=str(path))
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        if sum(info.file_size for info in npz.zip.infolist()) > MAX_BYTES:
            raise DataError("not a fit store (its members unpack larger than any store)", path=str(path))
        arrays = {name: npz[name] for name in npz.files}
    header = arrays.pop(_META, None)
    if header is None or header.dtype != np.uint8 or header.ndim != 1:
        raise DataError("not a fit store (no header)", path=str(path))
    meta = json.loads(header.tobytes().decode("ascii"))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(f"not a fit store of this harness (format {_shown(meta, 'format')}, expected {FORMAT})",
                        path=str(path))
    return arrays, meta


def _shown(meta: Any, name: str) -> str:
    return repr(meta.get(name))[:80] if isinstance(meta, dict) else "none"


def _checked(arrays: dict[str, np.ndarray], meta: dict[str, Any], *, key: str, folds: int,
             levels: int) -> dict[int, tuple[list[str], np.ndarray, list[Any]]]:
    """The header and arrays checked against each other: per fold its terms, idf and per category a constant class or
    ``(classes, coef, intercept)``. Every fault is a ValueError naming what is wrong."""
    if meta.get("key") != key:
        raise ValueError(f"it holds fit {_shown(meta, 'key')}, expected {key!r}")
    if meta.get("libraries") != libraries():
        raise ValueError(f"written with {_shown(meta, 'libraries')}, this is {libraries()}")
    stored = meta.get("folds")
    if not isinstance(stored, dict) or sorted(stored) != sorted(str(f) for f in range(folds)):
        raise ValueError(f"expected the models of folds 0 to {folds - 1}")
    used: set[str] = set()
    out: dict[int, tuple[list[str], np.ndarray, list[Any]]] = {}
    for fold in range(folds):
        entry = stored[str(fold)]
        if not isinstance(entry, dict):
            raise ValueError(f"fold {fold}: expected its vocabulary and models")
        terms, heads = entry.get("terms"), entry.get("heads")
        if (not isinstance(terms, list) or not terms or not all(isinstance(t, str) for t in terms)
                or len(set(terms)) != len(terms)):
            raise ValueError(f"fold {fold}: its vocabulary is not a list of distinct terms")
        idf = _array(arrays, f"fold{fold}_idf", (len(terms),), used)
        if not (idf > 0).all():
            raise ValueError(f"fold {fold}: an idf weight is not positive")
        if not isinstance(heads, list) or len(heads) != len(CATEGORIES):
            raise ValueError(f"fold {fold}: expected one model per category ({len(CATEGORIES)})")
        out[fold] = (terms, idf, [_head(arrays, head, f"fold{fold}_cat{j}", len(terms) + 1, levels, used)
                                  for j, head in enumerate(heads)])
    if set(arrays) != used:
        raise ValueError(f"arrays no model uses: {sorted(set(arrays) - used)[:3]}")
    return out


def _head(arrays: dict[str, np.ndarray], head: Any, name: str, width: int, levels: int, used: set[str]) -> Any:
    """One category's model: the constant class, or its classes with coefficients ``(rows, width)`` and intercepts."""
    if not isinstance(head, dict) or len(head) != 1:
        raise ValueError(f"{name}: expected a constant class or a list of classes")
    constant, classes = head.get("constant"), head.get("classes")
    if constant is not None:
        if type(constant) is not int or not 0 <= constant < levels:
            raise ValueError(f"{name}: a constant class outside 0 to {levels - 1}")
        return constant
    if (not isinstance(classes, list) or len(classes) < 2 or any(type(c) is not int for c in classes)
            or classes != sorted(set(classes)) or not 0 <= classes[0] <= classes[-1] < levels):
        raise ValueError(f"{name}: classes must be distinct and increasing, from 0 to {levels - 1}")
    rows = 1 if len(classes) == 2 else len(classes)
    coef = _array(arrays, f"{name}_coef", (rows, width), used)
    intercept = _array(arrays, f"{name}_intercept", (rows,), used)
    return np.array(classes, dtype=np.int64), coef, intercept


def _array(arrays: dict[str, np.ndarray], name: str, shape: tuple[int, ...], used: set[str]) -> np.ndarray:
    found = arrays.get(name)
    if found is None:
        raise ValueError(f"{name}: missing")
    if found.dtype != np.float64 or found.shape != shape:
        raise ValueError(f"{name}: {found.dtype} of shape {found.shape}, expected float64 of shape {shape}")
    if not np.isfinite(found).all():
        raise ValueError(f"{name}: holds a value that is not finite")
    used.add(name)
    return found


def _rebuilt(checked: Mapping[int, tuple[list[str], np.ndarray, Sequence[Any]]],
             new_vectorizer: Callable[[], Any]) -> dict[int, FoldModel]:
    """Fitted scikit-learn objects from checked parameters: a vectoriser answers ``transform`` and a regression
    ``predict_proba`` exactly as the ones that were fitted (the same numbers through the same code)."""
    from sklearn.linear_model import LogisticRegression

    out: dict[int, FoldModel] = {}
    for fold, (terms, idf, heads) in checked.items():
        vectorizer = new_vectorizer()
        vectorizer.vocabulary_ = {term: column for column, term in enumerate(terms)}
        vectorizer.idf_ = idf
        models: list[Any] = []
        for head in heads:
            if isinstance(head, int):
                models.append(head)
                continue
            model = LogisticRegression()
            model.classes_, model.coef_, model.intercept_ = head
            model.n_features_in_ = head[1].shape[1]
            models.append(model)
        out[fold] = (vectorizer, models)
    return out


def remove_pickles(folder: str | Path) -> list[str]:
    """Remove the pickled fits an earlier harness left in ``folder`` (they are never read again): the ones harness's
    record says it wrote, unchanged since, and the ones from before records existed, known by their name and the class
    their first bytes name (read as opcodes, nothing run). Any other file stays. The names removed."""
    from ..core.ownership import kind_of, unmark

    base = Path(folder)
    gone = []
    for stale in sorted(base.glob("*.pkl")) if base.is_dir() else ():
        if not stale.is_symlink() and (kind_of(stale) == "fit-cache" or _earlier_fit(stale)):
            try:
                stale.unlink()
            except OSError:
                continue
            gone.append(stale.name)
    if gone:
        with contextlib.suppress(OSError):
            unmark(base, gone)
    return gone


def _earlier_fit(path: Path) -> bool:
    """Whether ``path`` is a fit an earlier harness pickled: named as it named them, and its first object a
    ``harness.serve.graders.CrossFitted`` (the pickle's opcodes read, never executed)."""
    import pickletools

    if not _PICKLED_FIT.fullmatch(path.name):
        return False
    try:
        with path.open("rb") as handle:
            head = handle.read(256)
        strings: list[str] = []
        for opcode, arg, _ in pickletools.genops(io.BytesIO(head)):
            if opcode.name == "GLOBAL":
                return arg == f"{_PICKLED_CLASS[0]} {_PICKLED_CLASS[1]}"
            if opcode.name == "STACK_GLOBAL":
                return tuple(strings[-2:]) == _PICKLED_CLASS
            if isinstance(arg, str):
                strings.append(arg)
    except (OSError, ValueError):
        return False
    return False
