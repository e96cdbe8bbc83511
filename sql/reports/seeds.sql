-- Seeds: runs that differ only in their seed, grouped — mean, standard deviation, count and
-- range of one final metric per group, split and evaluated dataset, so "does MSLE beat MAE
-- over seeds?" is one query. A group is the runs with the same task, dataset, config (but
-- the seed), inputs and parent group (runs.seed_group). One dataset or all (NULL).
-- param: metric = t2a/mAP@10
-- param: split = eval
-- param: dataset = NULL
SELECT SUBSTR(seed_group, 1, 8) AS seed_group,
       task,
       COALESCE(tag_loss, '') AS tag_loss,
       dataset,
       eval_dataset,
       n,
       mean,
       sd,
       min,
       max
FROM seed_groups
WHERE metric = :metric AND split = :split AND (CAST(:dataset AS VARCHAR) IS NULL OR dataset = :dataset)
ORDER BY task, tag_loss, dataset, eval_dataset, mean DESC
