-- Caption S2: the best single captioner on CLAP-TAG features.
-- Candidates are finished caption runs of one dataset (NULL: the only dataset with
-- fine-tuned caption runs) whose features come from a clap_tag encoder, with a final score; ties go to the
-- run created first. CIDEr-D by default because SPICE (and so SPIDEr) needs user-installed
-- assets; select on val, `--param split=eval` for the paper's choice.
-- family: caption
-- param: split = val
-- param: metric = cider_d
-- param: dataset = NULL
SELECT run_id, value, 1 AS expected
FROM final_scores
WHERE family = 'caption' AND status = 'finished'
  AND split = :split AND metric = :metric AND value IS NOT NULL
  AND encoder_task = 'clap_tag'
  AND eval_dataset = dataset
  AND dataset = COALESCE(CAST(:dataset AS VARCHAR), (SELECT dataset FROM target_datasets WHERE family = 'caption'))
ORDER BY value DESC, run_started_at, run_id
LIMIT 1
