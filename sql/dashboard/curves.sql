-- Per-epoch scores (training curves) of the runs in :runs (comma-separated ids): every metric
-- recorded each epoch (validation metrics, the training loss, step time or data wait where
-- a task records them), in epoch order.
SELECT s.run_id, s.split, s.metric, s.epoch, s.value
FROM scores s
WHERE s.run_id IN (SELECT UNNEST(STRING_TO_ARRAY(:runs, ','))) AND s.epoch IS NOT NULL
ORDER BY s.run_id, s.metric, s.split, s.epoch
