-- Retrieval S3: the k best retrieval runs by a metric on a split,
-- ensembled by the mean of their similarity matrices. Top-10 by mAP@10 by default.
-- Candidates are finished clap / clap_tag / claip / claip_tag runs (task_filter) of one
-- dataset (NULL: the target_datasets view's choice, the dataset of the latest finished
-- fine-tuned retrieval run) with a final score; ties go to the smaller run id. Select on
-- val to keep the eval split unseen; `--param split=eval` reproduces the paper's choice.
-- param: split = val
-- param: metric = t2a/mAP@10
-- param: k = 10
-- param: task_filter = clap,clap_tag,claip,claip_tag
-- param: dataset = NULL
SELECT run_id, value, :k AS expected
FROM final_scores
WHERE family = 'retrieval' AND status = 'finished'
  AND split = :split AND metric = :metric AND value IS NOT NULL
  AND POSITION(',' || task || ',' IN ',' || :task_filter || ',') > 0
  AND dataset = COALESCE(CAST(:dataset AS VARCHAR), (SELECT dataset FROM target_datasets WHERE family = 'retrieval'))
ORDER BY value DESC, run_id
LIMIT :k
