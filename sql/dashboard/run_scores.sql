-- Final scores (best checkpoint) of the runs in :runs (comma-separated ids) on every dataset
-- and split they were scored on; a NULL value has its reason.
SELECT s.run_id, COALESCE(sd.name, d.name) AS eval_dataset, s.split, s.metric, s.value, s.reason
FROM scores s
JOIN runs r ON r.id = s.run_id
LEFT JOIN datasets d ON d.id = r.dataset_id
LEFT JOIN datasets sd ON sd.id = s.dataset_id
WHERE POSITION(',' || s.run_id || ',' IN ',' || :runs || ',') > 0 AND s.epoch IS NULL
ORDER BY s.run_id, eval_dataset, s.split, s.metric
