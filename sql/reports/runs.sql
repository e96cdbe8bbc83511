-- Every run with its lineage (parent run, encoder run of a captioner), status, seed, its seed
-- group (runs differing only in seed share it; `report seeds` aggregates them), and its
-- selection metric's final value on val and eval (the best checkpoint's); one dataset or
-- all (NULL). Runs that descend from random-weight stand-ins say so.
-- param: dataset = NULL
SELECT SUBSTR(i.run_id, 1, 8) AS run,
       i.task,
       COALESCE(i.tag_loss, '') AS tag_loss,
       i.dataset,
       SUBSTR(i.parent_run_id, 1, 8) AS parent,
       SUBSTR(i.encoder_run, 1, 8) AS encoder,
       i.status,
       i.seed,
       SUBSTR(r.seed_group, 1, 8) AS seed_group,
       i.select_metric AS metric,
       MAX(CASE WHEN s.split = 'val' THEN s.value END) AS val,
       MAX(CASE WHEN s.split = 'eval' THEN s.value END) AS eval,
       CASE WHEN i.random_inputs THEN 'random-weight inputs' ELSE '' END AS note
FROM run_info i
JOIN runs r ON r.id = i.run_id
LEFT JOIN scores s ON s.run_id = i.run_id AND s.epoch IS NULL AND s.metric = i.select_metric
                  AND (s.dataset_id = r.dataset_id OR s.dataset_id IS NULL)
WHERE CAST(:dataset AS VARCHAR) IS NULL OR i.dataset = :dataset
GROUP BY i.run_id, i.task, i.tag_loss, i.dataset, i.parent_run_id, i.encoder_run, i.status, i.seed, r.seed_group,
         i.select_metric, i.random_inputs, i.started_at
ORDER BY i.started_at, i.run_id
