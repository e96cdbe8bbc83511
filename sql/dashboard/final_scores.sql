-- Final scores (a run's best checkpoint) of the runs in :runs and the systems in :systems
-- (comma-separated ids; either may be empty) on every dataset and split they were scored on,
-- each under its owner's id; a NULL value has its reason. Each with its bootstrap interval
-- over clips (NULL where none was computed) and the id of its provenance record
-- (provenance.sql). A score without a dataset is on its owner's own dataset. Runs and systems
-- are picked in two branches, not one OR, so each can use the index on its owner column.
WITH picked AS (
    SELECT s.run_id AS owner_id, r.dataset_id AS owner_dataset, s.dataset_id, s.split, s.metric, s.value, s.reason,
           s.ci_low, s.ci_high, s.ci_level, s.provenance_id
    FROM scores s
    JOIN runs r ON r.id = s.run_id
    WHERE s.run_id IN (SELECT UNNEST(STRING_TO_ARRAY(:runs, ','))) AND s.epoch IS NULL
    UNION ALL
    SELECT s.system_id, y.dataset_id, s.dataset_id, s.split, s.metric, s.value, s.reason,
           s.ci_low, s.ci_high, s.ci_level, s.provenance_id
    FROM scores s
    JOIN systems y ON y.id = s.system_id
    WHERE s.system_id IN (SELECT UNNEST(STRING_TO_ARRAY(:systems, ','))) AND s.epoch IS NULL
)
SELECT p.owner_id, COALESCE(sd.name, od.name) AS eval_dataset, p.split, p.metric, p.value, p.reason,
       p.ci_low, p.ci_high, p.ci_level, p.provenance_id
FROM picked p
LEFT JOIN datasets od ON od.id = p.owner_dataset
LEFT JOIN datasets sd ON sd.id = p.dataset_id
ORDER BY p.owner_id, eval_dataset, p.split, p.metric
