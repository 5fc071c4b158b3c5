"""Each numeric setting's default, bounds and help, declared once for the settings models and the library alike.

scikit-learn's ``validate_params`` idea, the house way: a :class:`Bound` names a setting's default, its
limits and its help. The pydantic models of :mod:`harness.steps.settings` build their fields from it
(:meth:`Bound.field_args`), and the library's public functions carry the same bound through
:func:`bounded`, which checks each argument on every call and raises :class:`ConfigError` naming the
parameter, the value and the bound. A wrapper that calls the library inherits the check; a default that
differs from its bound's is refused when the module is imported, so the two can never drift apart.

>>> EPSILON.check("epsilon", 0.1)
>>> EPSILON.check("epsilon", 1.0)
Traceback (most recent call last):
...
harness.core.errors.ConfigError: `epsilon` 1.0: expected a number with 0 <= epsilon < 1
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from numbers import Integral, Real
from typing import Any, Generic, Literal, ParamSpec, TypeVar, get_args

from .constants import DEFAULT_N_BOOT, DEFAULT_SEED
from .errors import ConfigError

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

#: Upper bounds that keep a typo from allocating the machine away (checked before any work).
MAX_N_BOOT = 100_000
MAX_SEED = 2**32 - 1
MAX_STUDIES = 20_000
MAX_PLAN_BOOT = 10_000
MAX_ITEMS = 100_000_000


@dataclass(frozen=True)
class Bound(Generic[T]):
    """A numeric setting: its default, its limits (any of ``ge``, ``gt``, ``le``, ``lt``) and its help.

    ``integer`` settings take whole numbers only. ``required`` settings have no default (``default`` is
    None but None is refused); any other setting whose default is None may be left out (None passes).
    """

    default: T
    help: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    integer: bool = False
    required: bool = False

    def field_args(self, help: str | None = None) -> dict[str, Any]:
        """The keyword arguments of a pydantic ``Field`` holding this setting: default, limits, and its help (or
        ``help``, where a command words the same setting its own way)."""
        limits = {"ge": self.ge, "gt": self.gt, "le": self.le, "lt": self.lt}
        default = {} if self.required else {"default": self.default}
        described = {"description": self.help if help is None else help}
        return {**default, **{k: v for k, v in limits.items() if v is not None}, **described}

    def with_default(self, default: T, help: str | None = None) -> Bound[T]:
        """The same limits with another default (and help): one setting two commands start at different values."""
        return replace(self, default=default, help=self.help if help is None else help)

    def admits(self, value: Any) -> bool:
        """Whether ``value`` is within the bound (of the right kind: a bool is never a number)."""
        if value is None:
            return self.default is None and not self.required
        kind = Integral if self.integer else Real
        if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(float(value)):
            return False
        number = float(value)
        return ((self.ge is None or number >= self.ge) and (self.gt is None or number > self.gt)
                and (self.le is None or number <= self.le) and (self.lt is None or number < self.lt))

    def text(self, name: str) -> str:
        """The bound in words and symbols: ``an integer with 0 <= n_boot <= 100,000``."""
        low = f"{_number(self.ge)} <= " if self.ge is not None else ""
        low = f"{_number(self.gt)} < " if self.gt is not None else low
        high = f" <= {_number(self.le)}" if self.le is not None else ""
        high = f" < {_number(self.lt)}" if self.lt is not None else high
        return f"{'an integer' if self.integer else 'a number'} with {low}{name}{high}"

    def check(self, name: str, value: Any) -> None:
        """Refuse ``value`` for the parameter ``name`` unless the bound admits it."""
        if not self.admits(value):
            raise ConfigError(f"`{name}` {value!r}: expected {self.text(name)}", param=name)


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else str(value)


def bounded(**bounds: Bound[Any]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Check the named parameters of a public function against their bounds on every call.

    Refused at import, before any call: a parameter the function does not have, and a default that is
    not its bound's (write ``epsilon: float = EPSILON.default``).
    """

    def wrap(func: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(func)
        for name, bound in bounds.items():
            parameter = signature.parameters.get(name)
            if parameter is None:
                raise TypeError(f"{func.__qualname__} has no parameter {name!r} to bound")
            if parameter.default is not inspect.Parameter.empty and parameter.default != bound.default:
                raise TypeError(f"{func.__qualname__}({name}={parameter.default!r}): the bound's default is "
                                f"{bound.default!r}; write {name}=<BOUND>.default")

        @functools.wraps(func)
        def checked(*args: P.args, **kwargs: P.kwargs) -> R:
            given = signature.bind(*args, **kwargs).arguments
            for name, bound in bounds.items():
                if name in given:
                    bound.check(name, given[name])
            return func(*args, **kwargs)

        vars(checked)["__bounds__"] = dict(bounds)
        return checked

    return wrap


def bounds_of(func: Callable[..., Any]) -> dict[str, Bound[Any]]:
    """The bounds :func:`bounded` put on ``func`` (empty when none)."""
    return dict(getattr(func, "__bounds__", {}))


# The shared settings, each declared once. Help texts are the flags' and the study tables' own.
N_BOOT: Bound[int] = Bound(DEFAULT_N_BOOT, ge=0, le=MAX_N_BOOT, integer=True,
                           help=f"Cluster-bootstrap resamples for CIs (0 to skip; at most {MAX_N_BOOT:,}).")
SEED: Bound[int] = Bound(DEFAULT_SEED, ge=0, le=MAX_SEED, integer=True, help=f"Bootstrap seed (0 to {MAX_SEED}).")
#: Harm severities run 1 to 3: harmful when severity >= threshold.
THRESHOLD: Bound[int] = Bound(1, ge=1, le=3, integer=True,
                              help="Detection threshold: harmful when severity >= this (1 to 3).")
EPSILON: Bound[float] = Bound(0.1, ge=0, lt=1, help=(
    "Alt-test margin ε: how much worse than a human the grader may be and still replace one (the paper's guide: "
    "0.1 against crowd workers, 0.15 skilled annotators, 0.2 experts; 0 to below 1)."))
ASSURANCE: Bound[float] = Bound(0.9, ge=0.5, le=0.99, help=(
    "The share of simulated studies the conservative size meets the target in, the pilot's own uncertainty "
    "included (0.5 to 0.99)."))
STUDIES: Bound[int] = Bound(200, ge=10, le=MAX_STUDIES, integer=True,
                            help=f"Simulated studies per size (10 to {MAX_STUDIES:,}).")
PLAN_N_BOOT: Bound[int] = Bound(200, ge=50, le=MAX_PLAN_BOOT, integer=True, help=(
    f"Bootstrap resamples per simulated study (50 to {MAX_PLAN_BOOT:,}; not the study-wide n_boot)."))
TARGET_WIDTH: Bound[float | None] = Bound(None, gt=0, lt=2, help="The 95% interval width to reach, e.g. 0.10.")
BUDGET: Bound[int | None] = Bound(None, ge=1, le=MAX_ITEMS, integer=True, required=True,
                                  help="Prompt clusters to pick (each with all its pairs).")
#: A share of the labelled prompt clusters set aside for one purpose (dev, test).
SHARE: Bound[float] = Bound(0.5, gt=0, lt=1, help="Share of the labelled prompt clusters in dev.")
MAX_FPR: Bound[float] = Bound(0.1, gt=0, lt=1, help="recall: the false-positive rate allowed on dev.")
PADDING_COPIES: Bound[int] = Bound(3, ge=1, le=50, integer=True,
                                   help="verbosity: copies of the neutral paragraph added (1 to 50).")
#: One item count of a plan's ``sizes``.
SIZE: Bound[int | None] = Bound(None, ge=1, le=MAX_ITEMS, integer=True, required=True,
                                help="An item count to predict the interval width at.")

# The settings that take one of a few words: each list declared once, as the models' Literal and the library's tuple.
#: How ``harness select`` picks prompt clusters.
Strategy = Literal["uniform", "stratified", "active"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
#: How ``harness jury`` combines its members' verdicts.
JuryRule = Literal["majority", "median", "any", "mean-probability"]
JURY_RULES: tuple[str, ...] = get_args(JuryRule)
#: The rule a verdict read from a grader's probabilities follows (``harness calibrate-thresholds``).
VerdictRule = Literal["argmax", "expected", "thresholds"]
VERDICT_RULES: tuple[str, ...] = get_args(VerdictRule)
#: What ``harness calibrate-thresholds`` maximises on dev.
CutMetric = Literal["kappa-quadratic", "recall"]
CUT_METRICS: tuple[str, ...] = get_args(CutMetric)
#: The metric ``harness plan`` sizes a study for.
PlanMetric = Literal["kappa", "kappa-quadratic", "recall", "recall-gap", "escalation"]
PLAN_METRICS: tuple[str, ...] = get_args(PlanMetric)
#: The perturbation ``harness probe`` grades a run again with.
ProbeKind = Literal["verbosity", "exemplar-order", "label-order", "response-format"]
PROBE_KINDS: tuple[str, ...] = get_args(ProbeKind)
#: What a grader label outside the declared set is: left out, or a disagreement.
Unparsed = Literal["exclude", "disagree"]
