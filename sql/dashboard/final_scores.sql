-- Final scores (a run's best checkpoint) of the runs in :runs and the systems in :systems
-- (comma-separated ids; either may be empty) on every dataset and split they were scored on,
-- each under its owner's id; a NULL value has its reason. Each with its bootstrap interval
-- over clips (NULL where none was computed) and the id of its provenance record
-- (provenance.sql). A score without a dataset is on its owner's own dataset.
SELECT COALESCE(s.run_id, s.system_id) AS owner_id, COALESCE(sd.name, od.name) AS eval_dataset, s.split, s.metric,
       s.value, s.reason, s.ci_low, s.ci_high, s.ci_level, s.provenance_id
FROM scores s
LEFT JOIN runs r ON r.id = s.run_id
LEFT JOIN systems y ON y.id = s.system_id
LEFT JOIN datasets od ON od.id = COALESCE(r.dataset_id, y.dataset_id)
LEFT JOIN datasets sd ON sd.id = s.dataset_id
WHERE s.epoch IS NULL
  AND (POSITION(',' || s.run_id || ',' IN ',' || :runs || ',') > 0
       OR POSITION(',' || s.system_id || ',' IN ',' || :systems || ',') > 0)
ORDER BY owner_id, eval_dataset, s.split, s.metric
