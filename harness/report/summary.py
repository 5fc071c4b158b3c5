"""The report's first screen: the study's answers with their intervals, in plain words generated from the numbers.

Corrected shares come first with the grader's raw ones beside them (a reader should never take the raw share for
the answer); then how well the grader agrees with humans beside the human ceiling, whether it could replace an
annotator, and the prompt/response asymmetry. No model writes these sentences: each is filled from a result's
fields, and says n and the clusters behind its interval.
"""

from __future__ import annotations

from typing import Any

from ..results.analysis import Analysis
from ..results.calibration import Calibration
from ..results.raters import RaterAgreement
from .blocks import Section, Table, ci, num, pct

SHARES = (("reduction", "responses less severe than their prompt"), ("preservation", "as severe"),
          ("escalation", "more severe"))


def _shares(analysis: Analysis) -> tuple[list[list[str]], list[str]]:
    rows, lines = [], []
    corrected = analysis.corrected
    pooled = analysis.pooled
    for key, words in SHARES:
        raw = getattr(pooled, key)
        if corrected is not None and key in corrected.corrected:
            value, interval = corrected.corrected.get(key), corrected.corrected_ci.get(key, [None, None])
            units = f"{corrected.n_labelled or 0} labelled pairs in {corrected.n_labelled_clusters or 0} clusters"
            rows.append([key, pct(value), ci(interval, pct=True), pct(raw.rate), ci(raw.ci, pct=True), units])
            if key == "escalation":
                lines.append(f"Corrected by human labels, {pct(value)} of responses are {words} "
                             f"(95% CI {ci(interval, pct=True)}; {units}); "
                             f"the grader's own labels say {pct(raw.rate)}.")
        else:
            units = f"{raw.n} pairs, {pooled.unit.n_clusters} clusters"
            rows.append([key, "n/a", "", pct(raw.rate), ci(raw.ci, pct=True), units])
            if key == "escalation":
                lines.append(f"In the labels analysed, {pct(raw.rate)} of responses are {words} "
                             f"(95% CI {ci(raw.ci, pct=True)}; "
                             f"n={raw.n}, {pooled.unit.n_clusters} clusters); no human labels corrected it.")
    total = [corrected.corrected.get(key) for key, _ in SHARES] if corrected is not None else []
    if total and all(v is not None for v in total) and abs(sum(v or 0.0 for v in total) - 1) > 5e-4:
        lines.append(f"The three corrected shares add up to {pct(sum(v or 0.0 for v in total))}, not 100%: a share "
                     "corrected beyond [0, 1] is shown clipped (the correction's warnings name it).")
    return rows, lines


def _no_verdicts(calibration: Calibration) -> str | None:
    """How many answers gave no verdict, per side, when any did (a grader that does not follow the format)."""
    said = []
    for side, report in calibration.targets.items():
        counts = report.counts
        missing = sum(counts.get(k, 0) for k in ("unparsed", "refused", "failed"))
        answered = missing + counts.get("ok", 0)
        if missing and answered:
            said.append(f"{missing} of {answered} {side} answers ({pct(missing / answered)})")
    if not said:
        return None
    return (f"{calibration.model or 'The grader'} gave no verdict (unparsed, refused or failed) "
            f"in {' and '.join(said)}; the agreement below covers only the answers it did give.")


def _agreement(calibration: Calibration, *, alt_test: bool = True) -> list[str]:
    lines = []
    missing = _no_verdicts(calibration)
    if missing:
        lines.append(missing)
    sides = [s for s in ("response", "prompt") if s in calibration.targets]
    with_kappa = (s for s in sides if calibration.targets[s].max.kappa_quadratic is not None)
    side = next(with_kappa, sides[0] if sides else None)
    response = calibration.targets.get(side) if side else None
    if response is not None:
        m = response.max
        lines.append(f"Against human labels {calibration.model or 'the grader'}'s {side} verdicts agree at quadratic κ "
                     f"{num(m.kappa_quadratic)} (95% CI {ci(m.ci.get('kappa_quadratic', [None, None]))}; "
                     f"n={m.n_items}, {m.n_clusters} clusters)")
        ceiling = calibration.human_agreement
        if ceiling is not None:
            scope = ceiling.scopes.get(f"{side}.max")
            score = next(iter(scope.graders.values()), None) if scope is not None else None
            if scope is not None and score is not None and scope.human_ceiling is not None:
                lines[-1] += (f"; with each of {len(ceiling.raters)} raters its mean κ is "
                              f"{num(score.mean_kappa)}, against {num(scope.human_ceiling)} for the raters with "
                              "each other (the human ceiling)")
            verdict = next(iter(ceiling.passed.values()), None) if ceiling.passed and alt_test else None
            if verdict is not None:
                lines[-1] += (f"; it {'could' if verdict else 'could not'} replace an annotator "
                              f"(alternative annotator test, ε {ceiling.epsilon:g})")
        lines[-1] += "."
    gap = (calibration.asymmetry or {}).get("max")
    if gap is not None and gap.recall_gap is not None:
        interval = ci(gap.recall_gap_ci, pct=True)
        lines.append(f"It detects harm more readily in prompts than in responses by {pct(gap.recall_gap)} of recall "
                     f"(95% CI {interval}), the paper's asymmetry." if gap.recall_gap > 0 else
                     f"Its prompt-minus-response recall gap is {pct(gap.recall_gap)} (95% CI {interval}).")
    return lines


def _alt_tests(raters: RaterAgreement) -> list[str]:
    """Whether each grader could replace an annotator, or why the alternative annotator test could not say."""
    lines = []
    for grader, passed in raters.passed.items():
        if passed is not None:
            lines.append(f"{grader} {'could' if passed else 'could not'} replace one of the "
                         f"{len(raters.raters)} annotators (alternative annotator test, ε {raters.epsilon:g}, "
                         "in every scope where it ran).")
            continue
        tests = [scope.graders[grader].alt_test for scope in raters.scopes.values() if grader in scope.graders]
        notes = [t.note.removeprefix("not run: ") for t in tests if t is not None and t.note]
        lines.append(f"Whether {grader} could replace an annotator is unknown: the alternative annotator test "
                     "did not run" + (f" ({notes[0]})." if notes else "."))
    return lines


def summary_section(results: list[Any]) -> Section | None:
    """The answers first: corrected shares with the raw beside them, agreement beside the ceiling, the asymmetry."""
    analysis = next((r for r in results if isinstance(r, Analysis)), None)
    calibrations = [r for r in results if isinstance(r, Calibration)]
    if analysis is None and not calibrations:
        return None
    section = Section("Summary", [])
    if analysis is not None:
        rows, lines = _shares(analysis)
        section.paragraphs += lines
        section.tables.append(Table(
            "What the study found",
            ["share", "corrected", "95% CI", "grader's raw", "95% CI", "behind the correction"],
            rows,
            "Corrected: prediction-powered (or EM) estimates from human labels, the answer to read; grader's raw: the "
            "grader's own labels, biased by its errors. Every CI resamples prompt clusters."))
    raters = next((r for r in results if isinstance(r, RaterAgreement)), None)
    for calibration in calibrations:  # every grader calibrated, each named; the alt-test once, below, when run for all
        section.paragraphs += _agreement(calibration, alt_test=raters is None)
    if raters is not None:
        section.paragraphs += _alt_tests(raters)
    return section
