-- Retrieval top-k: the k best retrieval runs by a metric on a split, ensembled by the mean of
-- their similarity matrices — the one query behind retrieval_s1 … retrieval_s4, which only
-- declare other defaults for it. Candidates are finished runs of the retrieval family (the
-- tasks table; task_filter: a comma-separated subset of tasks, NULL for all) trained and
-- scored on one dataset (NULL: the only dataset with fine-tuned retrieval runs) with a final
-- score. Ties on the metric go to the better tie_metric, then to the run created first —
-- never to a random id, so the same runs give the same system. Select on val to keep the
-- eval split unseen; `--param split=eval` reproduces the paper's choice.
-- family: retrieval
-- param: split = val
-- param: metric = t2a/mAP@10
-- param: tie_metric = t2a/R@10
-- param: k = 4
-- param: task_filter = NULL
-- param: dataset = NULL
SELECT f.run_id, f.value, :k AS expected
FROM final_scores f
LEFT JOIN final_scores t ON t.run_id = f.run_id AND t.eval_dataset = f.eval_dataset AND t.split = f.split
                        AND t.metric = :tie_metric
WHERE f.family = 'retrieval' AND f.status = 'finished'
  AND f.split = :split AND f.metric = :metric AND f.value IS NOT NULL
  AND (CAST(:task_filter AS VARCHAR) IS NULL
       OR POSITION(',' || f.task || ',' IN ',' || CAST(:task_filter AS VARCHAR) || ',') > 0)
  AND f.eval_dataset = f.dataset
  AND f.dataset = COALESCE(CAST(:dataset AS VARCHAR), (SELECT dataset FROM target_datasets WHERE family = 'retrieval'))
ORDER BY f.value DESC, t.value DESC NULLS LAST, f.run_started_at, f.run_id
LIMIT :k
