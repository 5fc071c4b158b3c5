"""``harness agreement`` as one library step: several human raters, and graders set beside them."""

from __future__ import annotations

from pathlib import Path

from .outcome import Context, Outcome, claimed, result_file, stamp
from .settings import AgreementSettings


def agreement(table: str | Path, settings: AgreementSettings, *,
              out: str | Path | None = None, context: Context = ()) -> Outcome:
    """Krippendorff's α among the raters of ``table``, the human ceiling beside each grader (a column, a prefix, a
    rater of a long table or a run folder) and the alternative annotator test. Writes ``agreement.json`` to ``out``
    (default ``runs/agreement-<table>.json``)."""
    from ..analysis.raters import rater_agreement
    from ..io.ratings import read_ratings

    source = Path(table)
    target = Path(out) if out is not None else Path("runs") / f"agreement-{source.stem}.json"
    claimed([result_file(target)], [("the ratings table", source), *(("a grader", g) for g in settings.grader)])
    ratings = read_ratings(source, raters=list(settings.raters), rater_column=settings.rater_column,
                           label_column_name=settings.label_column, graders=list(settings.grader), final=settings.final,
                           level=settings.level, cluster=settings.cluster)
    result = rater_agreement(ratings, epsilon=settings.epsilon, n_boot=settings.n_boot, seed=settings.seed)
    result = stamp(result, "agreement", "human raters" + (" and graders" if settings.grader else ""),
                   [("ratings", source), *(("grader", g) for g in settings.grader)], context)
    result.write(target)
    return Outcome(result, [target])
