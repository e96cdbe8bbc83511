"""Zero-shot classification scores of a run or a system in the registry.

They are ordinary ``scores`` rows — final (no epoch), keyed by (run or system, dataset,
split), with bootstrap interval and provenance — whose metric names start with
:data:`aacbatch.registry.runs.ZEROSHOT_PREFIX`. Writing them replaces only earlier zero-shot
rows of the same splits; the retrieval or caption scores of those splits stay, as a zero-shot
evaluation leaves theirs. Rebuilding a system drops its zero-shot rows with all its others
(its members may have changed).
"""

from __future__ import annotations

from sqlalchemy import delete

from aacbatch.registry.runs import ZEROSHOT_PREFIX, SplitResult, finite_interval, put_provenance
from aacbatch.registry.schema import Score
from aacbatch.registry.store import Registry


def put_zeroshot_scores(registry: Registry, dataset_id: str, results: dict[str, SplitResult], *,
                        run_id: str | None = None, system_id: str | None = None) -> None:
    """Split → zero-shot metrics of one run or one system on ``dataset_id``, in one transaction."""
    if (run_id is None) == (system_id is None):
        raise ValueError("zero-shot scores belong to exactly one run or one system")
    owner = Score.run_id == run_id if run_id is not None else Score.system_id == system_id
    with registry.transaction() as session:
        for split, result in results.items():
            if any(not metric.startswith(ZEROSHOT_PREFIX) for metric in result.metrics):
                raise ValueError(f"zero-shot metric names start with {ZEROSHOT_PREFIX!r}: {list(result.metrics)}")
            session.execute(delete(Score).where(owner, Score.dataset_id == dataset_id, Score.split == split,
                                                Score.epoch.is_(None), Score.metric.startswith(ZEROSHOT_PREFIX)))
            provenance = put_provenance(session, result.provenance)
            for metric, value in result.metrics.items():
                low, high, level = finite_interval(result.intervals.get(metric))
                session.add(Score(run_id=run_id, system_id=system_id, dataset_id=dataset_id, split=split,
                                  metric=metric, value=value, reason=result.reasons.get(metric) if value is None else None,
                                  ci_low=low, ci_high=high, ci_level=level, provenance_id=provenance.get(metric)))
