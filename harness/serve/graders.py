"""The embedded graders behind ``harness serve``: small in-context graders, not LLMs.

Each reads a request the way a few-shot LLM grader does: the side being graded (prompt or
response), the delimited text, and the few-shot exemplars with their answers (from the
system message or from earlier user/assistant turns). Its verdict per category combines

* a *prior*: TF-IDF + logistic regression for that side, **cross-fitted by prompt**: the data
  is split into folds of prompt clusters, and a text is judged by a model fitted without the
  folds of every fitted text it is a near copy of (:meth:`CrossFitted.excluded`): the same
  words whatever the white space, case, punctuation or Unicode form, or most of one text's
  character 5-grams found in the other (padding added, a tail cut). A text near no fitted text
  is judged by the model without the fold its words hash to, so every text, known or new, is
  judged by a model of the same size that never saw its label nor a near copy's;
* the exemplars' *evidence*: each exemplar votes for its own label, weighted by its TF-IDF
  similarity to the text (nearer and more exemplars weigh more, same-side ones more than
  other-side ones, later ones more than earlier ones: a recency bias, as LLMs show), plus a
  small pull toward the exemplars' overall label mix;
* the rubric's *order*: a small pull toward the severity of the level the system message
  lists first (a primacy bias), so listing the levels from 7 down makes the grader harsher.

The two order biases are there so that ``harness probe --kind exemplar-order`` and
``--kind label-order`` have something to find on these graders, as they would on an LLM.

At temperature 0 the verdict is the most probable severity; above 0 it is sampled from the
grader's own probabilities with the request's seed, so repeated sampling can be tested.

Three graders with documented weaknesses are served at once:

* ``harness-baseline``: character n-gram features (they generalise from few texts); the strongest.
* ``harness-small``: the 300 most frequent words only, so it leans on its exemplars.
* ``harness-literal``: ``harness-baseline`` that over-flags refusals naming a harmful topic
  on the response side (the response-side failure mode of real graders).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.constants import CATEGORIES, SIDES, label_column
from ..core.errors import DataError, HarnessError

if TYPE_CHECKING:
    import pandas as pd

K = 4
FOLDS = 5
#: How strongly the exemplars' overall label mix pulls every verdict (a few-shot prior).
MIX_WEIGHT = 0.1
#: How much more the last exemplar weighs than the average one (the first weighs as much less).
RECENCY = 0.5
#: The pull toward the severity of the level the rubric lists first (added to probabilities that sum to 1).
PRIMACY = 0.05
#: Near copies: texts sharing this share of the shorter one's character 5-grams (of their normalised words).
NEAR_SHARE = 0.8
SHINGLE = 5
#: The characters of a text the graders read, as a model reads up to its context window (a megabyte of text is
#: answered in well under a second, not after a client's timeout).
READ_CHARS = 50_000
#: Bump when the fitting code changes, so cached fits on disk are not reused (5: kept as data, serve/fit_store.py).
FIT_VERSION = "incontext-5"
_REFUSAL = re.compile(
    r"\b(i can'?t|i cannot|i won'?t|i will not|i'?m not able|i am not able|i'?d rather not)\b", re.IGNORECASE
)
#: The words that name each category's topic, for the literal reader (``harness-literal``).
_TOPIC_WORDS = {
    "hate": r"hate|slur|racis\w*|group|religio\w*|ethnic\w*|discriminat\w*|stereotyp\w*",
    "sexual": r"sex\w*|explicit|erotic|intimate|romantic",
    "violence": r"hurt\w*|weapon\w*|bomb\w*|kill\w*|attack\w*|poison\w*|threat\w*|explosiv\w*|violence|dangerous",
    "self_harm": r"suicide|self-harm|end (your|my) life|crisis line|hurting yourself|harm yourself|starving",
}
_TOPICS = {category: re.compile(rf"\b({words})\b", re.IGNORECASE) for category, words in _TOPIC_WORDS.items()}


@dataclass(frozen=True)
class Profile:
    """How one served grader is built and how much it trusts its exemplars."""

    name: str
    description: str
    features: str  # which feature set (a fitted model is shared by profiles with the same one)
    exemplar_weight: float
    literal_refusals: bool = False


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("harness-baseline", "character n-gram TF-IDF prior (1,500 features), cross-fitted; the strongest",
                "chars", 2.0),
        Profile("harness-small", "300 most frequent words only; leans on its exemplars", "small", 3.5),
        Profile("harness-literal", "harness-baseline that over-flags refusals naming a harmful topic (response side)",
                "chars", 2.0, literal_refusals=True),
    )
}
_FEATURES = {"chars": {"analyzer": "char_wb", "ngram_range": (2, 4), "max_features": 1500},
             "small": {"ngram_range": (1, 1), "max_features": 300}}


@dataclass(frozen=True)
class Verdict:
    """One category's decision: merged severity, Azure raw level and the grader's confidence."""

    severity: int
    raw: int
    confidence: float


@dataclass(frozen=True)
class Exemplar:
    text: str
    side: str
    labels: tuple[int, int, int, int]


class Shots(list[Exemplar]):
    """A request's exemplars in the order it shows them, and the severity of the level its rubric lists first
    (None when it lists none)."""

    first_level: int | None = None


def text_key(text: str) -> str:
    r"""What a text says, whatever its form: NFKC, case folded, invisible characters dropped, only its words kept
    (white space and punctuation between them do not count).

    >>> text_key("  How DO I\u200b bake?\n") == text_key("how do i bake") == "how do i bake"
    True
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")
    return " ".join(re.findall(r"\w+", folded))


def _shingles(key: str) -> set[str]:
    return {key[i:i + SHINGLE] for i in range(max(0, len(key) - SHINGLE + 1))}


class PooledModel:
    """A vectoriser and one classifier per category, fitted on prompt and response texts
    together (the data is small), with a side indicator so each side keeps its own base rates."""

    def __init__(self, texts: list[str], sides: list[str], labels: np.ndarray, features: str) -> None:
        from sklearn.linear_model import LogisticRegression

        self.vectorizer = self.new_vectorizer(features)
        matrix = self._with_side(self.vectorizer.fit_transform(texts), sides)
        self.models: list[Any] = []
        for j in range(len(CATEGORIES)):
            y = labels[:, j]
            classes = np.unique(y)
            if classes.size < 2:
                self.models.append(int(classes[0]) if classes.size else 0)
                continue
            model = LogisticRegression(C=2.0, max_iter=300, class_weight="balanced")
            model.fit(matrix, y)
            self.models.append(model)

    @staticmethod
    def new_vectorizer(features: str) -> Any:
        """The vectoriser of a feature set, not fitted yet (a stored model's parameters go into one)."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(sublinear_tf=True, **_FEATURES[features])  # type: ignore[arg-type]

    @classmethod
    def restored(cls, vectorizer: Any, models: list[Any]) -> PooledModel:
        """A model from the fitted parts a fit store read back (nothing is fitted again)."""
        model = cls.__new__(cls)
        model.vectorizer, model.models = vectorizer, models
        return model

    @staticmethod
    def _with_side(matrix: Any, sides: list[str]) -> Any:
        from scipy.sparse import csr_matrix, hstack

        indicator = csr_matrix(np.array([[1.0 if side == "response" else 0.0] for side in sides]))
        return hstack([matrix, indicator], format="csr")

    def probabilities(self, vector: Any, side: str) -> np.ndarray:
        """``(4 categories, 4 severities)`` prior probabilities for one vectorised text."""
        features = self._with_side(vector, [side])
        out = np.zeros((len(CATEGORIES), K))
        for j, model in enumerate(self.models):
            if isinstance(model, int):
                out[j, model] = 1.0
                continue
            out[j, model.classes_.astype(int)] = model.predict_proba(features)[0]
        return out


NOTHING_TO_FIT = "no prompt or response text with all four labels known: the graders are fitted on labelled texts"


def labelled_texts(frame: pd.DataFrame) -> Iterator[tuple[int, str, str, np.ndarray]]:
    """The texts the graders learn from: each side's non-blank text whose four labels are known, with its row."""
    for side in SIDES:
        columns = [label_column(side, c) for c in CATEGORIES]
        if side not in frame.columns or not all(c in frame.columns for c in columns):
            continue
        labels = frame[columns].to_numpy(dtype=float, na_value=np.nan)
        for i, text in enumerate(frame[side].tolist()):
            if isinstance(text, str) and text.strip() and not np.isnan(labels[i]).any():
                yield i, side, text, labels[i].astype(int)


def check_fit_table(path: str | Path) -> None:
    """Refuse a table the graders cannot be fitted on (missing, not a pairs table, no labelled text), naming the file:
    ``harness serve`` reads it before it listens, so a bad ``fit`` never starts a server that answers 500."""
    from ..io.pairs import load_pairs

    file = Path(path)
    if not file.is_file():
        raise DataError("no such file" if not file.exists() else "not a file", path=str(file))
    if next(labelled_texts(load_pairs(file)), None) is None:
        raise DataError(NOTHING_TO_FIT, path=str(file))


class CrossFitted:
    """Pooled models fitted without some folds of prompt clusters, and the rule that picks one for a text.

    Each prompt cluster is in one of ``folds`` folds. A text is judged by the model fitted without every fold
    holding a near copy of it (:meth:`excluded`); the single-fold models are fitted at once, the others when first
    needed. Should its near copies span every fold, the model is fitted without their clusters alone. ``stored``: the
    single-fold models read back from a fit store (by fold), taken as they are instead of fitted.
    """

    def __init__(self, frame: pd.DataFrame, features: str, folds: int = FOLDS, *,
                 stored: Mapping[int, PooledModel] | None = None) -> None:
        from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

        from ..io.clusters import cluster_column, cluster_of_rows

        codes = cluster_of_rows(frame, cluster_column(frame.columns, None))
        order = np.random.default_rng(0).permutation(int(codes.max()) + 1 if codes.size else 0)
        fold_of_cluster = {int(c): int(i % folds) for i, c in enumerate(order)}
        items: list[tuple[str, str, np.ndarray, int]] = []
        clusters: list[int] = []
        for i, side, text, labels in labelled_texts(frame):
            items.append((text, side, labels, fold_of_cluster[int(codes[i])]))
            clusters.append(int(codes[i]))
        if not items:
            raise DataError(NOTHING_TO_FIT)
        self.folds = folds
        self.features = features
        self.items = items
        self.fold = np.array([r[3] for r in items])
        self.cluster = np.array(clusters)
        self.keys = [text_key(r[0]) for r in items]
        self.by_key: dict[str, list[int]] = {}
        for i, key in enumerate(self.keys):
            self.by_key.setdefault(key, []).append(i)
        # Character 5-grams of each fitted text's words: which fitted texts a new one is a near copy of.
        self.shingler = CountVectorizer(analyzer="char", ngram_range=(SHINGLE, SHINGLE), binary=True, lowercase=False,
                                        dtype=np.float64).fit(self.keys)
        self.shingles = self.shingler.transform(self.keys).tocsr()
        self.sizes = np.asarray(self.shingles.sum(axis=1)).ravel()
        # Content-word similarity between a text and the exemplars, and the words relevance reads (no labels
        # involved, so fitting them on every text leaks nothing); unrelated sentences score near 0.
        texts = [r[0] for r in items]
        self.similarity = TfidfVectorizer(stop_words="english", sublinear_tf=True).fit(texts)
        self.words = TfidfVectorizer(sublinear_tf=True, **_FEATURES[features]).fit(texts)  # type: ignore[arg-type]
        self.models: dict[tuple[str, frozenset[int]], PooledModel | None] = {
            ("folds", frozenset({fold})): model for fold, model in (stored or {}).items()}
        for fold in range(folds):
            self._model(("folds", frozenset({fold})))

    def near_copies(self, text: str) -> np.ndarray:
        """Indices of the fitted texts ``text`` is a near copy of: the same words, or at least ``NEAR_SHARE`` of the
        shorter one's character 5-grams in the other (so a padded or cut copy is one)."""
        key = text_key(text)
        found = set(self.by_key.get(key, ()))
        own = _shingles(key)
        if own:
            shared = np.asarray((self.shingles @ self.shingler.transform([key]).T).toarray()).ravel()
            shorter = np.minimum(self.sizes, len(own))
            found |= set(np.flatnonzero((shorter > 0) & (shared >= NEAR_SHARE * shorter)).tolist())
        return np.array(sorted(found), dtype=int)

    def excluded(self, text: str) -> tuple[str, frozenset[int]]:
        """What the model that judges ``text`` is fitted without: ``("folds", …)`` or, when its near copies span every
        fold, ``("clusters", …)``. A text near no fitted text leaves out the fold its words hash to."""
        near = self.near_copies(text)
        folds = frozenset(int(f) for f in self.fold[near])
        if not folds:
            digest = hashlib.sha256(text_key(text).encode()).digest()
            return "folds", frozenset({int.from_bytes(digest[:8], "big") % self.folds})
        if len(folds) < self.folds:
            return "folds", folds
        return "clusters", frozenset(int(c) for c in self.cluster[near])

    def _model(self, which: tuple[str, frozenset[int]]) -> PooledModel | None:
        if which not in self.models:
            left_out = self.fold if which[0] == "folds" else self.cluster
            train = [r for r, unit in zip(self.items, left_out, strict=True) if int(unit) not in which[1]]
            texts, sides, labels = [r[0] for r in train], [r[1] for r in train], np.array([r[2] for r in train])
            self.models[which] = PooledModel(texts, sides, labels, self.features) if train else None
        return self.models[which]

    def model_for(self, text: str) -> PooledModel | None:
        """The model that never saw the label of ``text`` nor of a near copy of it (None: no text is left to fit)."""
        return self._model(self.excluded(text))


class InContextGrader:
    """One served grader: a cross-fitted prior and exemplar evidence (see the module docstring)."""

    def __init__(self, profile: Profile, fitted: CrossFitted, fingerprint: str) -> None:
        self.profile = profile
        self.fitted = fitted
        self.fingerprint = f"{profile.name}-{fingerprint}"
        self._prior = lru_cache(maxsize=100_000)(self._prior_uncached)

    def _prior_uncached(self, side: str, text: str) -> np.ndarray:
        model = self.fitted.model_for(text)
        if model is None:
            return np.full((len(CATEGORIES), K), 1.0 / K)
        return model.probabilities(model.vectorizer.transform([text]), side)

    def probabilities(self, side: str, text: str, exemplars: Sequence[Exemplar] = ()) -> np.ndarray:
        """``(4 categories, 4 severities)`` probabilities after reading the exemplars (and, from :class:`Shots`, the
        rubric's level order)."""
        text = text[:READ_CHARS]
        scores = self._prior(side, text).copy()
        first_level = exemplars.first_level if isinstance(exemplars, Shots) else None
        if first_level is not None:
            scores[:, first_level] += PRIMACY
        if exemplars:
            words = self.fitted.similarity
            others = words.transform([e.text for e in exemplars])
            similarity = np.asarray((others @ words.transform([text]).T).toarray()).ravel().clip(0.0, 1.0)
            same_side = np.array([1.0 if e.side in (side, "any") else 0.5 for e in exemplars])
            n = len(exemplars)
            recency = 1.0 + RECENCY * (2.0 * np.arange(n) / (n - 1) - 1.0) if n > 1 else np.ones(1)
            weights = self.profile.exemplar_weight * similarity * same_side * recency
            votes = np.zeros((len(CATEGORIES), K))
            mix = np.zeros((len(CATEGORIES), K))
            for weight, late, exemplar in zip(weights, recency / n, exemplars, strict=True):
                for j, label in enumerate(exemplar.labels):
                    votes[j, label] += weight
                    mix[j, label] += late  # the label mix leans on the last exemplars too
            scores = scores + votes + MIX_WEIGHT * mix
        return scores / scores.sum(axis=1, keepdims=True)

    def grade(self, side: str, text: str, exemplars: Sequence[Exemplar] = (), *, temperature: float = 0.0,
              seed: int | None = None) -> dict[str, Verdict]:
        """A verdict per category: the most probable severity, or a seeded sample above temperature 0."""
        text = text[:READ_CHARS]
        probabilities = self.probabilities(side, text, exemplars)
        out: dict[str, Verdict] = {}
        for j, category in enumerate(CATEGORIES):
            p = probabilities[j]
            if temperature > 0:
                tempered = p ** (1.0 / temperature)
                tempered /= tempered.sum()
                digest = hashlib.sha256(f"{seed}|{side}|{category}|{text}".encode()).digest()
                severity = int(np.random.default_rng(int.from_bytes(digest[:8], "big")).choice(K, p=tempered))
            else:
                severity = int(p.argmax())
            if (self.profile.literal_refusals and side == "response"
                    and _REFUSAL.search(text) and _TOPICS[category].search(text)):
                severity = max(severity, 1)  # the literal reader: naming the topic counts as the topic
            confidence = float(p[severity])
            raw = severity * 2 + (1 if confidence >= 0.8 and severity > 0 else 0)
            out[category] = Verdict(severity, raw, round(confidence, 4))
        return out

    def relevance(self, prompt: str, response: str) -> int:
        """Relevance 1-3 of a response to its prompt, from TF-IDF cosine similarity."""
        vectors = self.fitted.words.transform([prompt[:READ_CHARS], response[:READ_CHARS]])
        similarity = float((vectors[0] @ vectors[1].T).toarray()[0, 0])
        return 3 if similarity >= 0.2 else 2 if similarity >= 0.05 else 1


def _fit_key(path: Path, features: str) -> str:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return f"{FIT_VERSION}-{features}-{digest}"


@lru_cache(maxsize=8)
def _fitted(path_text: str, mtime_ns: int, features: str,
            cache_dir: str | None) -> tuple[CrossFitted, str, tuple[str, ...]]:
    """One cross-fitted prior per (file, feature set), kept in memory and, with ``cache_dir``, on disk as data
    (:mod:`harness.serve.fit_store`, keyed by the file's hash, the fitting code's version and the libraries'); and
    what happened to the stored copy, in sentences. A store that cannot be read is fitted again, never trusted."""
    from ..io.pairs import load_pairs
    from . import fit_store

    path = Path(path_text)
    key = _fit_key(path, features)
    frame = load_pairs(path)
    if cache_dir is None:
        return CrossFitted(frame, features), key, ()
    gone = fit_store.remove_pickles(cache_dir)
    notes = [f"removed {len(gone)} pickled fit(s) an earlier harness wrote in {cache_dir} (never read again)"
             ] if gone else []
    stored = fit_store.store_path(cache_dir, key)
    models = None
    if stored.is_file():
        try:
            models = fit_store.read(stored, key=key, folds=FOLDS, levels=K,
                                    new_vectorizer=lambda: PooledModel.new_vectorizer(features))
        except DataError as exc:
            notes.append(f"{exc}; fitted again")
    if models is not None:
        restored = {fold: PooledModel.restored(*parts) for fold, parts in models.items()}
        return CrossFitted(frame, features, stored=restored), key, tuple(notes)
    fitted = CrossFitted(frame, features)
    kept = {fold: (model.vectorizer, model.models) for fold in range(FOLDS)
            if (model := fitted.models.get(("folds", frozenset({fold})))) is not None}
    if len(kept) == FOLDS:  # a table of one prompt leaves a fold with nothing to fit: quick to fit, not kept
        try:
            fit_store.write(stored, kept, key=key)
        except (OSError, HarnessError) as exc:
            notes.append(f"the fit was not kept ({exc}); the next start fits again")
    return fitted, key, tuple(notes)


def build_graders(fit_path: str | Path, names: Sequence[str], *, cache_dir: str | Path | None = None,
                  notes: list[str] | None = None) -> dict[str, InContextGrader]:
    """The named graders, fitted on ``fit_path`` (cross-fitted by prompt), or read back from ``cache_dir``; ``notes``
    is given what happened to the fits kept there (a store fitted again, one not written), each sentence once."""
    unknown = [n for n in names if n not in PROFILES]
    if unknown:
        from ..core.errors import ConfigError

        raise ConfigError(f"`model_names` {unknown[0]!r}: expected some of {list(PROFILES)}")
    path = Path(fit_path)
    if not path.is_file():
        raise DataError("file not found", path=str(path))
    out = {}
    for name in names:
        profile = PROFILES[name]
        fitted, key, said = _fitted(str(path.resolve()), path.stat().st_mtime_ns, profile.features,
                                    str(cache_dir) if cache_dir else None)
        out[name] = InContextGrader(profile, fitted, key.rsplit("-", 1)[-1][:12])
        if notes is not None:
            notes += [note for note in said if note not in notes]
    return out
