"""``agreement.json`` as a section: α among the human raters, the human ceiling beside each grader,
and the alternative annotator test's verdict, for the terminal and the report alike."""

from __future__ import annotations

from ..results.calibration import SoftSide
from ..results.raters import GraderScore, RaterAgreement, ScopeAgreement
from .blocks import Section, Table, ci, num, pct, pvalue, scope_name

#: Scopes whose pairwise and per-annotator rows are shown (the others are in the JSON).
_DETAILED = ("label", "prompt.max", "response.max")


def _scope_label(scope: str) -> str:
    """``response.self_harm`` as "response Self-harm"; ``prompt.max`` (the highest category) as "prompt, any"."""
    if "." not in scope:
        return scope
    side, category = scope.split(".", 1)
    return f"{side}, any" if category == "max" else f"{side} {scope_name(category)}"


def _verdict(score: GraderScore) -> str:
    test = score.alt_test
    if test is None or test.passed is None:
        return "not run"
    return f"{'passed' if test.passed else 'failed'} (ω {test.winning_rate:.2f}, ρ {test.advantage_probability:.2f})"


def agreement_section(data: RaterAgreement) -> Section:
    """Agreement among raters, graders beside them, and the alt-test (see :mod:`harness.analysis.raters`)."""
    unit = data.unit
    kinds = {s.kappa_kind for s in data.scopes.values()}
    section = Section("Human agreement", [
        f"{len(data.raters)} raters ({', '.join(data.raters)}) in {data.source}: {unit.n_items} items in "
        f"{unit.n_clusters} clusters of {unit.cluster or 'single items'}; {data.level} scale. "
        + (f"95% CIs resample whole clusters ({data.n_boot} resamples). " if data.n_boot
           else "No CIs (--n-boot 0). ")
        + f"The human ceiling is the raters' mean pairwise {' / '.join(sorted(kinds))}.",
        *(f"Warning: {w}." for w in data.warnings),
    ])
    categories = data.scopes.keys() - {"label"}
    section.tables.append(Table(
        "Agreement among the raters",
        ["scope", "items", "clusters", "α", "95% CI", "ceiling"],
        [[_scope_label(name), str(s.n_items), str(s.n_clusters), num(s.alpha), ci(s.alpha_ci), num(s.human_ceiling)]
         for name, s in data.scopes.items()],
        f"α: Krippendorff's alpha ({data.level}) over every item rated at least twice (1 perfect, 0 chance); "
        "ceiling: mean κ between two raters"
        + ("; any: an item's highest category." if categories else ".")))
    detailed = {name: s for name, s in data.scopes.items() if name in _DETAILED}
    section.tables.append(_raters_table(detailed))
    section.tables.append(Table(
        "Pairs of raters",
        ["scope", "raters", "items", "κ", "95% CI"],
        [[_scope_label(name), f"{p.a} · {p.b}", str(p.n_items),
          num(p.kappa_weighted if p.kappa_weighted is not None else p.kappa), ci(p.ci)]
         for name, s in detailed.items() for p in s.pairs],
        "κ: Cohen's kappa (quadratic-weighted on an ordinal or interval scale); other scopes are in "
        "agreement.json."))
    if data.graders:
        section.tables.extend(_grader_tables(data, detailed))
        section.paragraphs.extend(_headlines(detailed, explain=len(data.raters) >= 3))
    for name, scope in data.scopes.items():
        section.paragraphs.extend(f"{_scope_label(name)}: {note}." for note in scope.notes)
    return section


def _raters_table(detailed: dict[str, ScopeAgreement]) -> Table:
    """Each rater against the others in the main scopes, and against the final label where there is one."""
    final = any("kappa_final" in r.model_fields_set for s in detailed.values() for r in s.raters.values())
    return Table(
        "Each rater against the others",
        ["scope", "rater", "items", "mean κ", "α without", *(["κ final"] if final else [])],
        [[_scope_label(name), rater, str(r.n_items), num(r.mean_kappa), num(r.alpha_without),
          *([num(r.kappa_final)] if final else [])]
         for name, s in detailed.items() for rater, r in s.raters.items()],
        "mean κ: with each other rater; α without: the raters' α with this one left out (higher: this rater is the "
        "outlier)" + ("; κ final: with the final label" if final else "") + ".")


def _outcome(score: GraderScore) -> list[str]:
    """The alt-test's verdict, ω and ρ as three cells."""
    test = score.alt_test
    if test is None or test.passed is None:
        return ["not run", "n/a", "n/a"]
    return ["passed" if test.passed else "failed", f"{test.winning_rate:.2f}", f"{test.advantage_probability:.2f}"]


def _grader_tables(data: RaterAgreement, detailed: dict[str, ScopeAgreement]) -> list[Table]:
    """Per grader: every scope's κ beside the ceiling with the alt-test, and the main scopes' annotator by
    annotator."""
    final = any("kappa_final" in score.model_fields_set
                for scope in data.scopes.values() for score in scope.graders.values())
    notes = sorted({s.alt_test.note for scope in data.scopes.values() for s in scope.graders.values()
                    if s.alt_test is not None and s.alt_test.note})
    tables = []
    for grader in data.graders:
        summary = data.alt_tests[grader]
        rows = [[_scope_label(name), num(score.mean_kappa), num(score.human_ceiling),
                 *([num(score.kappa_final)] if final else []), *_outcome(score)]
                for name, scope in data.scopes.items() if (score := scope.graders.get(grader)) is not None]
        tables.append(Table(
            f"{grader} beside the human ceiling",
            ["scope", "κ", "ceiling", *(["final"] if final else []), "alt-test", "ω", "ρ"],
            rows,
            "κ: the grader's mean κ with each rater; ceiling: the raters' mean κ with each other"
            + ("; final: κ with the final label" if final else "")
            + f". Alt-test at ε {data.epsilon}: {_rule(data)}; ω: "
            "winning rate; ρ: advantage probability. "
            + f"Passed in {summary.passed} of {summary.tested} scopes tested"
            + (f" ({summary.untested} not tested)." if summary.untested else ".")))
        tests = [[_scope_label(name), a.rater, pct(a.rho_grader), pct(a.rho_human), pvalue(a.p_by),
                  "yes" if a.rejected else "no", f"{a.n_items}/{a.n_clusters}"]
                 for name, scope in detailed.items() if (score := scope.graders.get(grader)) and score.alt_test
                 for a in score.alt_test.annotators]
        if tests:
            tables.append(Table(
                f"{grader}: alternative annotator test, one annotator left out at a time",
                ["scope", "left out", "ρ grader", "ρ human", "p (BY)", "wins", "n/clusters"],
                tests,
                "ρ: share of items where the grader (or the left-out annotator) matches the other annotators at "
                "least as well; wins: H0 ρ grader ≤ ρ human − ε rejected, Benjamini-Yekutieli over annotators at "
                "q 0.05."
                + "".join(f" {note}." for note in notes)))
    return tables


def ceiling_table(data: RaterAgreement) -> Table:
    """The short form other sections carry: per main scope, each grader's κ beside the human ceiling,
    α among the humans and the alt-test's verdict."""
    rows = [[_scope_label(name), grader, num(score.mean_kappa), num(score.human_ceiling), num(scope.alpha),
             *_outcome(score)[:2]]
            for name, scope in data.scopes.items() if name in _DETAILED for grader, score in scope.graders.items()]
    unit = data.unit
    return Table(
        f"Beside the human ceiling ({len(data.raters)} raters, {unit.n_items} items in {unit.n_clusters} clusters)",
        ["scope", "grader", "κ", "ceiling", "α", "alt-test", "ω"],
        rows,
        "κ: the grader's mean κ with each rater; ceiling: the raters' mean κ with each other; α: Krippendorff's "
        f"alpha ({data.level}) among the raters; alt-test at ε {data.epsilon}: {_rule(data)}."
        + "".join(f" Warning: {w}." for w in data.warnings))


def _headlines(detailed: dict[str, ScopeAgreement], *, explain: bool) -> list[str]:
    """One line per grader and main scope: its κ against the human ceiling, and the alt-test."""
    lines = []
    for name, scope in detailed.items():
        for grader, score in scope.graders.items():
            test = score.alt_test
            if test is not None and test.passed is not None:
                verdict = f"alt-test {_verdict(score)}"
            elif explain and test is not None and test.note:
                verdict = f"alt-test {test.note}"
            else:
                verdict = "alt-test not run"
            above = (score.mean_kappa is not None and score.human_ceiling is not None
                     and score.mean_kappa > score.human_ceiling)
            lines.append(f"{grader} ({_scope_label(name)}): κ {num(score.mean_kappa)} with the raters, "
                         + ("above" if above else "against")
                         + f" the raters' κ with each other of {num(score.human_ceiling)}"
                         + f"; {verdict}.")
    return lines


def _rule(data: RaterAgreement) -> str:
    for scope in data.scopes.values():
        for score in scope.graders.values():
            if score.alt_test is not None:
                return score.alt_test.rule
    return "not run"


def soft_table(soft: dict[str, SoftSide]) -> Table:
    """The grader's probabilities, its verdict and one annotator's label, each scored as a forecast of a held-out
    rater."""
    rows = []
    for side, s in soft.items():
        forecasts = (("grader's P(severity)", s.grader),
                     ("grader's verdict", s.verdict),
                     ("one annotator's label", s.annotator),
                     ("P(severity) − verdict", s.probabilities_minus_verdict),
                     ("verdict − annotator", s.verdict_minus_annotator))
        for name, score in forecasts:
            rows.append([side, name, str(s.n), str(s.n_clusters), num(score.log_loss), ci(score.log_loss_ci),
                         num(score.brier), ci(score.brier_ci)])
    return Table(
        "Soft labels: the grader's probabilities scored against held-out raters",
        ["side", "forecast", "n", "clusters", "log loss", "95% CI", "Brier", "95% CI"],
        rows,
        "Each rater's label in turn is the outcome; lower is better. Log loss in nats (forecasts floored at 1e-6: a "
        "certain forecast that is wrong costs 13.8), Brier from 0 to 2: both proper scoring rules, so probabilities "
        "equal to the raters' distribution score best. The verdict is a forecast made with certainty; one "
        "annotator's label, scored the same way against another rater, is its like-for-like comparison. "
        "Differences below 0: the first is better (P(severity) − verdict: what the probabilities add).")
