-- Caption S1: the best captioner on CLAP-TAG features + the best on CLAP features, ensembled
-- by averaging their per-step word distributions in beam search.
-- Candidates are finished caption runs of one dataset (NULL: the only dataset with
-- fine-tuned caption runs) with a final score, grouped by the task of the retrieval run whose frozen encoder
-- made their features; ties go to the run created first. CIDEr-D by default because SPICE (and
-- so SPIDEr) needs user-installed assets; select on val, `--param split=eval` for the paper's.
-- family: caption
-- param: split = val
-- param: metric = cider_d
-- param: dataset = NULL
WITH ranked AS (
    SELECT run_id, value, run_started_at,
           ROW_NUMBER() OVER (PARTITION BY encoder_task ORDER BY value DESC, run_started_at, run_id) AS n
    FROM final_scores
    WHERE family = 'caption' AND status = 'finished'
      AND split = :split AND metric = :metric AND value IS NOT NULL
      AND encoder_task IN ('clap_tag', 'clap')
      AND eval_dataset = dataset
      AND dataset = COALESCE(CAST(:dataset AS VARCHAR), (SELECT dataset FROM target_datasets WHERE family = 'caption'))
)
SELECT run_id, value, 2 AS expected
FROM ranked
WHERE n = 1
ORDER BY value DESC, run_started_at, run_id
