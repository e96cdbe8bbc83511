-- Final text→audio scores on the eval split of the runs listed in :runs (comma-separated ids),
-- with task, parent run and whether they depend on random-weight stand-ins.
SELECT r.task,
       CASE WHEN t.tag_loss THEN r.config_json::JSON ->> 'tag_loss' ELSE '' END AS tag_loss,
       SUBSTR(r.id, 1, 8) AS run,
       SUBSTR(r.parent_run_id, 1, 8) AS parent,
       MAX(CASE WHEN s.metric = 't2a/R@1' THEN s.value END) AS "R@1",
       MAX(CASE WHEN s.metric = 't2a/R@5' THEN s.value END) AS "R@5",
       MAX(CASE WHEN s.metric = 't2a/R@10' THEN s.value END) AS "R@10",
       MAX(CASE WHEN s.metric = 't2a/mAP@10' THEN s.value END) AS "mAP@10",
       CASE WHEN r.random_weights THEN 'random-weight inputs' ELSE '' END AS note
FROM runs r
LEFT JOIN tasks t ON t.name = r.task
JOIN scores s ON s.run_id = r.id AND s.split = 'eval' AND s.epoch IS NULL
WHERE POSITION(r.id IN :runs) > 0
GROUP BY r.id, r.task, t.tag_loss, r.config_json, r.parent_run_id, r.random_weights
ORDER BY r.task, tag_loss
