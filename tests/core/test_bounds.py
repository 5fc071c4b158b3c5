"""Each setting's bound is declared once (harness/core/bounds.py): every public library function that takes a
setting refuses exactly what the settings model refuses, at the edges of every bound, with a message naming the
parameter, the value and the bound."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

import harness
from harness.analysis.agreement import agreement
from harness.analysis.calibration import calibrate_run
from harness.analysis.comparison import compare, compare_graders
from harness.analysis.correction_em import corrected_transitions
from harness.analysis.injection import flip_rates
from harness.analysis.planning import plan
from harness.analysis.probes import padded, probe_scopes
from harness.analysis.raters import rater_agreement
from harness.analysis.selection import select
from harness.analysis.stability import stability
from harness.analysis.stats import bootstrap_ci
from harness.analysis.table_calibration import calibrate_table
from harness.analysis.thresholds import calibrate_thresholds, choose_cuts, split_dev
from harness.analysis.transitions import analyze
from harness.core.bounds import EPSILON, MAX_SEED, N_BOOT, SEED, SHARE, Bound, bounded, bounds_of
from harness.core.errors import ConfigError
from harness.steps.settings import (
    AgreementSettings,
    AnalyzeSettings,
    CalibrateSettings,
    CompareSettings,
    PlanSettings,
    ProbeSettings,
    SelectSettings,
    Settings,
    ShotSearchSettings,
    StabilitySettings,
    ThresholdSettings,
)
from harness.workflows.shot_search import split_pool


class Reached(Exception):
    """The call got past its bounds into the function's body."""


class Untouchable:
    """An input that raises :class:`Reached` the moment the function's body reads it."""

    def __getattr__(self, name: str) -> Any:
        raise Reached(name)

    def __len__(self) -> int:
        raise Reached("len")

    def __iter__(self) -> Any:
        raise Reached("iter")


#: Each public function that takes a setting: its settings model (None: no command has one), the model's other
#: required values, and which of the model's fields each bounded parameter is.
CASES: list[tuple[Callable[..., Any], type[Settings] | None, dict[str, Any], dict[str, str]]] = [
    (rater_agreement, AgreementSettings, {}, {}),
    (calibrate_run, CalibrateSettings, {"human": "h.jsonl"}, {}),
    (calibrate_table, CalibrateSettings, {"gold": "g", "pred": "p"}, {}),
    (compare, CompareSettings, {}, {}),
    (compare_graders, CompareSettings, {}, {}),
    (analyze, AnalyzeSettings, {}, {}),
    (plan, PlanSettings, {"target_width": 0.1}, {}),
    (select, SelectSettings, {"budget": 5}, {}),
    (calibrate_thresholds, ThresholdSettings, {}, {}),
    (split_dev, ThresholdSettings, {}, {}),
    (choose_cuts, ThresholdSettings, {}, {}),
    (stability, StabilitySettings, {}, {}),
    (probe_scopes, ProbeSettings, {}, {}),
    (padded, ProbeSettings, {}, {"repeat": "padding"}),
    (split_pool, ShotSearchSettings, {"dev_frac": 1e-10, "test_frac": 1e-10}, {}),  # any share leaves a pool
    (flip_rates, None, {}, {}),
    (agreement, None, {}, {}),
    (corrected_transitions, None, {}, {}),
    (bootstrap_ci, None, {}, {}),
]


def _edges(bound: Bound[Any]) -> list[tuple[float, bool]]:
    """Values at and just beyond each limit, with whether the bound admits them."""
    step = 1 if bound.integer else 1e-9
    edges: list[tuple[float, bool]] = []
    if bound.ge is not None:
        edges += [(bound.ge, True), (bound.ge - step, False)]
    if bound.gt is not None:
        edges += [(bound.gt, False), (bound.gt + step, True)]
    if bound.le is not None:
        edges += [(bound.le, True), (bound.le + step, False)]
    if bound.lt is not None:
        edges += [(bound.lt, False), (bound.lt - step, True)]
    return [(int(v) if bound.integer else float(v), ok) for v, ok in edges]


def _valid(bound: Bound[Any]) -> Any:
    return bound.default if bound.admits(bound.default) else next(v for v, ok in _edges(bound) if ok)


def _call(func: Callable[..., Any], base: dict[str, Any], **given: Any) -> None:
    """Call ``func`` with ``given``, the model's other required values where ``func`` takes them, admitted values for
    its other bounded parameters, and untouchable inputs for everything else it requires."""
    bounds = bounds_of(func)
    positional, keywords = [], {}
    for name, parameter in inspect.signature(func).parameters.items():
        if name in given:
            continue
        if name in base:
            keywords[name] = base[name]
        elif parameter.default is not inspect.Parameter.empty:
            continue
        elif name in bounds:
            keywords[name] = _valid(bounds[name])
        elif parameter.kind is inspect.Parameter.KEYWORD_ONLY:
            keywords[name] = Untouchable()
        else:
            positional.append(Untouchable())
    func(*positional, **keywords, **given)


PARAMS = [pytest.param(func, model, base, fields, name, value, ok, id=f"{func.__name__}-{name}={value}")
          for func, model, base, fields in CASES for name, bound in bounds_of(func).items()
          for value, ok in _edges(bound)]


@pytest.mark.parametrize(("func", "model", "base", "fields", "name", "value", "ok"), PARAMS)
def test_the_function_and_its_model_refuse_the_same_values(func: Callable[..., Any], model: type[Settings] | None,
                                                            base: dict[str, Any], fields: dict[str, str], name: str,
                                                            value: float, ok: bool) -> None:
    if ok:  # past the bound, into the body, which the untouchable input stops
        with pytest.raises(Exception) as stopped:
            _call(func, base, **{name: value})
        assert not isinstance(stopped.value, ConfigError), stopped.value
    else:
        with pytest.raises(ConfigError) as refused:
            _call(func, base, **{name: value})
        assert f"`{name}` {value!r}: expected " in str(refused.value) and refused.value.param == name
        assert bounds_of(func)[name].text(name) in str(refused.value)
    if model is not None:
        field = fields.get(name, name)
        if ok:
            assert getattr(model(**{**base, field: value}), field) == value
        else:
            with pytest.raises(ValidationError):
                model(**{**base, field: value})


@pytest.mark.parametrize(("func", "model", "fields"), [(f, m, x) for f, m, _, x in CASES if m is not None],
                         ids=lambda v: getattr(v, "__name__", ""))
def test_each_bounded_default_is_the_models(func: Callable[..., Any], model: type[Settings],
                                            fields: dict[str, str]) -> None:
    signature = inspect.signature(func)
    for name in bounds_of(func):
        default = signature.parameters[name].default
        if default is not inspect.Parameter.empty and name != "target_width":
            assert model.model_fields[fields.get(name, name)].default == default, name


#: Parameters that mirror a setting: a public function taking one must carry its bound.
SETTING_NAMES = {"epsilon", "n_boot", "seed", "assurance", "studies", "max_fpr", "dev_frac", "test_frac", "budget",
                 "target_width"}


def test_every_exported_function_taking_a_setting_is_bounded() -> None:
    unbounded = []
    for export in harness.__all__:
        value = getattr(harness, export)
        if inspect.isfunction(value):
            taken = SETTING_NAMES & set(inspect.signature(value).parameters)
            unbounded += [f"{export}({name})" for name in sorted(taken - set(bounds_of(value)))]
    assert not unbounded, unbounded


def test_epsilon_of_one_is_refused_by_the_model_and_the_library_alike() -> None:
    """ε is the margin the grader may trail a human by on a win-rate difference in [-1, 1]: at 1 every grader passes."""
    with pytest.raises(ValidationError):
        CalibrateSettings(human="h.jsonl", epsilon=1.0)
    with pytest.raises(ConfigError, match=r"`epsilon` 1.0: expected a number with 0 <= epsilon < 1"):
        rater_agreement(Untouchable(), epsilon=1.0)  # type: ignore[arg-type]
    assert CalibrateSettings(human="h.jsonl", epsilon=0.0).epsilon == 0.0 == EPSILON.ge


def test_a_run_threshold_outside_the_severities_is_refused_by_the_model() -> None:
    with pytest.raises(ValidationError, match="a run's harm severities"):
        CalibrateSettings(human="h.jsonl", threshold=4)
    assert CalibrateSettings(gold="g", pred="p", threshold=4).threshold == 4  # a table's scale: checked on its labels


def test_dev_and_test_shares_must_leave_an_exemplar_pool() -> None:
    with pytest.raises(ValidationError, match="summing below 1"):
        ShotSearchSettings(dev_frac=0.5, test_frac=0.5)
    with pytest.raises(ConfigError, match="summing below 1"):
        split_pool(Untouchable(), dev_frac=0.5, test_frac=0.5, seed=1)  # type: ignore[arg-type]


def test_plan_sizes_are_bounded_item_counts() -> None:
    with pytest.raises(ValidationError, match="each size must be an integer with 1 <= size"):
        PlanSettings(sizes=[100, 0])
    with pytest.raises(ConfigError, match=r"`sizes` 0: expected an integer with 1 <= sizes <= 100,000,000"):
        plan(Untouchable(), sizes=[100, 0])  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "ok"),
                         [(True, False), (2.0, False), (float("nan"), False), (None, False), (3, True)])
def test_an_integer_bound_takes_whole_numbers_only(value: Any, ok: bool) -> None:
    assert N_BOOT.admits(value) is ok
    assert SEED.admits(MAX_SEED) and not SEED.admits(MAX_SEED + 1)


def test_a_float_bound_refuses_what_is_not_a_finite_number() -> None:
    assert SHARE.admits(0.5) and SHARE.admits(1e-9)
    assert not any(SHARE.admits(v) for v in (float("inf"), float("nan"), "0.5", None, False))


def test_a_default_that_is_not_the_bounds_is_refused_when_the_function_is_made() -> None:
    with pytest.raises(TypeError, match=r"f\(seed=0\): the bound's default is 20260709"):
        @bounded(seed=SEED)
        def f(*, seed: int = 0) -> int:
            return seed
    with pytest.raises(TypeError, match="has no parameter 'epsilon'"):
        @bounded(epsilon=EPSILON)
        def g(*, seed: int = SEED.default) -> int:
            return seed


def test_the_cli_names_the_flag_of_a_bound_the_library_refuses() -> None:
    from harness.cli.common import as_flags

    with pytest.raises(ConfigError) as refused:
        rater_agreement(Untouchable(), n_boot=-1)  # type: ignore[arg-type]
    assert as_flags(refused.value) == "--n-boot -1: expected an integer with 0 <= n_boot <= 100,000"


def test_each_choice_list_is_the_models_literal_and_the_librarys_tuple() -> None:
    from typing import get_args

    from harness.analysis import jury, pilots, probes, selection, thresholds, verdicts
    from harness.core.constants import LEVELS
    from harness.steps.settings import JurySettings

    fields = {(SelectSettings, "strategy"): selection.STRATEGIES, (JurySettings, "rule"): jury.RULES,
              (ThresholdSettings, "rule"): verdicts.RULES, (ThresholdSettings, "metric"): thresholds.METRICS,
              (PlanSettings, "metric"): pilots.METRICS, (ProbeSettings, "kind"): probes.KINDS,
              (AgreementSettings, "level"): LEVELS}
    for (model, name), words in fields.items():
        annotation = model.model_fields[name].annotation
        literal = next((a for a in get_args(annotation) if get_args(a)), annotation)  # Level | None: the Literal
        assert get_args(literal) == words, (model.__name__, name)
    with pytest.raises(ConfigError, match="`strategy` 'random': expected one of uniform, stratified, active"):
        select(Untouchable(), budget=1, strategy="random")
