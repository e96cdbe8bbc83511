"""The pipeline's registry use on both backends: ingest → split → featurize → train → query."""

from __future__ import annotations

import pytest

from aacbatch.registry.queries import named_query, run_sql
from aacbatch.train.run import train_task


@pytest.mark.backends("duckdb", "postgresql")
def test_featurize_train_and_report_on_each_backend(synth_registry):
    result = train_task(synth_registry, "bow", dataset="sc", log=lambda _: None)
    bow_eval = result.final["eval"]["t2a/mAP@10"]
    columns, rows = run_sql(synth_registry, named_query("eval_retrieval").read_text(), {"runs": result.run_id})
    assert dict(zip(columns, rows[0]))["mAP@10"] == pytest.approx(bow_eval, abs=1e-12)
    _, sets = run_sql(synth_registry, named_query("feature_sets").read_text(), {"dataset": "sc"})
    assert [(r[1], r[3]) for r in sets] == [("mel", "complete")]
