-- Caption S3: the k best captioners on CLAP-TAG MAE features + the k best on CLAP-TAG MSLE
-- features (six models by default), ensembled in beam search.
-- Candidates are finished caption runs of one dataset (NULL: the only dataset with
-- fine-tuned caption runs) with a final score, grouped by their encoder's tag loss; ties go to the smaller run
-- id. CIDEr-D by default because SPICE (and so SPIDEr) needs user-installed assets; select on
-- val, `--param split=eval` for the paper's choice.
-- family: caption
-- param: split = val
-- param: metric = cider_d
-- param: k = 3
-- param: dataset = NULL
WITH ranked AS (
    SELECT run_id, value, run_started_at,
           ROW_NUMBER() OVER (PARTITION BY tag_loss ORDER BY value DESC, run_started_at, run_id) AS n
    FROM final_scores
    WHERE family = 'caption' AND status = 'finished'
      AND split = :split AND metric = :metric AND value IS NOT NULL
      AND encoder_task = 'clap_tag' AND tag_loss IN ('mae', 'mse_log')
      AND eval_dataset = dataset
      AND dataset = COALESCE(CAST(:dataset AS VARCHAR), (SELECT dataset FROM target_datasets WHERE family = 'caption'))
)
SELECT run_id, value, 2 * :k AS expected
FROM ranked
WHERE n <= :k
ORDER BY value DESC, run_started_at, run_id
