-- Final scores (best checkpoint) of the runs in :runs (comma-separated ids) on every dataset
-- and split they were scored on; a NULL value has its reason. Each with its bootstrap interval
-- over clips (NULL where none was computed) and the id of its provenance record (provenance.sql).
SELECT s.run_id, COALESCE(sd.name, d.name) AS eval_dataset, s.split, s.metric, s.value, s.reason,
       s.ci_low, s.ci_high, s.ci_level, s.provenance_id
FROM scores s
JOIN runs r ON r.id = s.run_id
LEFT JOIN datasets d ON d.id = r.dataset_id
LEFT JOIN datasets sd ON sd.id = s.dataset_id
WHERE POSITION(',' || s.run_id || ',' IN ',' || :runs || ',') > 0 AND s.epoch IS NULL
ORDER BY s.run_id, eval_dataset, s.split, s.metric
