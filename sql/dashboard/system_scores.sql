-- Final scores of the systems in :systems (comma-separated ids) on every dataset and split
-- they were scored on; a NULL value has its reason. Each with its bootstrap interval over
-- clips (NULL where none was computed) and the id of its provenance record (provenance.sql).
SELECT s.system_id, COALESCE(sd.name, yd.name) AS eval_dataset, s.split, s.metric, s.value, s.reason,
       s.ci_low, s.ci_high, s.ci_level, s.provenance_id
FROM scores s
JOIN systems y ON y.id = s.system_id
LEFT JOIN datasets yd ON yd.id = y.dataset_id
LEFT JOIN datasets sd ON sd.id = s.dataset_id
WHERE POSITION(',' || s.system_id || ',' IN ',' || :systems || ',') > 0 AND s.epoch IS NULL
ORDER BY s.system_id, eval_dataset, s.split, s.metric
