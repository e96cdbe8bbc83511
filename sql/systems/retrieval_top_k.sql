-- Retrieval top-k: the k best retrieval runs by a metric on a split, ensembled by the mean of
-- their similarity matrices — the one query behind retrieval_s1 … retrieval_s4, which only
-- declare other defaults for it. Candidates are finished runs of the retrieval family (the
-- tasks table; task_filter: a comma-separated subset of tasks, NULL for all) of one dataset
-- (NULL: the target_datasets view's choice, the dataset of the latest finished fine-tuned
-- retrieval run) with a final score; ties go to the smaller run id. Select on val to keep the
-- eval split unseen; `--param split=eval` reproduces the paper's choice.
-- param: split = val
-- param: metric = t2a/mAP@10
-- param: k = 4
-- param: task_filter = NULL
-- param: dataset = NULL
SELECT run_id, value, :k AS expected
FROM final_scores
WHERE family = 'retrieval' AND status = 'finished'
  AND split = :split AND metric = :metric AND value IS NOT NULL
  AND (CAST(:task_filter AS VARCHAR) IS NULL
       OR POSITION(',' || task || ',' IN ',' || CAST(:task_filter AS VARCHAR) || ',') > 0)
  AND dataset = COALESCE(CAST(:dataset AS VARCHAR), (SELECT dataset FROM target_datasets WHERE family = 'retrieval'))
ORDER BY value DESC, run_id
LIMIT :k
