-- Training curves: the per-epoch validation metrics of runs (metrics listed comma-separated;
-- one dataset or all, one task or all with NULL), one row per run, metric and epoch.
-- Runs that descend from random-weight stand-ins say so.
-- param: metrics = t2a/mAP@10,cider_d,mAP,loss
-- param: dataset = NULL
-- param: task = NULL
-- plot: curves
SELECT SUBSTR(i.run_id, 1, 8) AS run,
       i.task || COALESCE(' ' || i.tag_loss, '') || ' on ' || COALESCE(i.dataset, '?') AS label,
       s.metric,
       s.epoch,
       s.value,
       CASE WHEN i.random_inputs THEN 'random-weight inputs' ELSE '' END AS note
FROM run_info i
JOIN scores s ON s.run_id = i.run_id AND s.epoch IS NOT NULL
WHERE POSITION(',' || s.metric || ',' IN ',' || :metrics || ',') > 0
  AND (CAST(:dataset AS VARCHAR) IS NULL OR i.dataset = :dataset)
  AND (CAST(:task AS VARCHAR) IS NULL OR i.task = :task)
ORDER BY i.started_at, i.run_id, s.metric, s.epoch
