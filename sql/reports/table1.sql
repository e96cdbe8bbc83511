-- Table 1: text→audio retrieval on a split (eval by default) — the bag-of-words baseline,
-- the best single run (by val mAP@10, like system S4) and every retrieval system built, on
-- one dataset (NULL: the only dataset with fine-tuned retrieval runs), named in every row.
-- Every metric comes with its 95 % bootstrap interval (columns X_low, X_high; shown with
-- `report table1 --ci`). Rows whose runs descend from random-weight stand-ins say so in the note.
-- family: retrieval
-- param: split = eval
-- param: dataset = NULL
-- plot: bars
WITH target AS (
    SELECT COALESCE(CAST(:dataset AS VARCHAR), (SELECT dataset FROM target_datasets WHERE family = 'retrieval')) AS dataset
),
baseline AS (
    SELECT run_id FROM run_info
    WHERE family = 'baseline' AND output = 'retrieval' AND status = 'finished' AND dataset = (SELECT dataset FROM target)
    ORDER BY finished_at DESC, run_id
    LIMIT 1
),
single AS (
    SELECT run_id FROM final_scores
    WHERE family = 'retrieval' AND status = 'finished' AND split = 'val' AND metric = 't2a/mAP@10'
      AND value IS NOT NULL AND dataset = (SELECT dataset FROM target) AND eval_dataset = dataset
    ORDER BY value DESC, run_started_at, run_id
    LIMIT 1
),
entries AS (
    SELECT 1 AS position, 'bag-of-words baseline' AS entry, 'run ' || SUBSTR(b.run_id, 1, 8) AS source, 1 AS members,
           b.t2a_r1, b.t2a_r5, b.t2a_r10, b.t2a_map10,
           b.t2a_r1_low, b.t2a_r1_high, b.t2a_r5_low, b.t2a_r5_high, b.t2a_r10_low, b.t2a_r10_high, b.t2a_map10_low, b.t2a_map10_high, b.random_inputs, '' AS warnings
    FROM run_best_scores b JOIN baseline ON baseline.run_id = b.run_id
    WHERE b.split = :split AND b.eval_dataset = b.dataset
    UNION ALL
    SELECT 2, 'best single run (val mAP@10)', 'run ' || SUBSTR(b.run_id, 1, 8), 1,
           b.t2a_r1, b.t2a_r5, b.t2a_r10, b.t2a_map10,
           b.t2a_r1_low, b.t2a_r1_high, b.t2a_r5_low, b.t2a_r5_high, b.t2a_r10_low, b.t2a_r10_high, b.t2a_map10_low, b.t2a_map10_high, b.random_inputs, ''
    FROM run_best_scores b JOIN single ON single.run_id = b.run_id
    WHERE b.split = :split AND b.eval_dataset = b.dataset
    UNION ALL
    SELECT 3, s.name, 'system', s.n_members,
           s.t2a_r1, s.t2a_r5, s.t2a_r10, s.t2a_map10,
           s.t2a_r1_low, s.t2a_r1_high, s.t2a_r5_low, s.t2a_r5_high, s.t2a_r10_low, s.t2a_r10_high, s.t2a_map10_low, s.t2a_map10_high, s.random_inputs, COALESCE(s.warnings, '')
    FROM system_scores s
    WHERE s.kind = 'retrieval' AND s.split = :split AND s.eval_dataset = (SELECT dataset FROM target)
)
SELECT entry AS system,
       (SELECT dataset FROM target) AS dataset,
       source,
       members,
       t2a_r1 AS "R@1", t2a_r1_low AS "R@1_low", t2a_r1_high AS "R@1_high",
       t2a_r5 AS "R@5", t2a_r5_low AS "R@5_low", t2a_r5_high AS "R@5_high",
       t2a_r10 AS "R@10", t2a_r10_low AS "R@10_low", t2a_r10_high AS "R@10_high",
       t2a_map10 AS "mAP@10", t2a_map10_low AS "mAP@10_low", t2a_map10_high AS "mAP@10_high",
       CASE WHEN random_inputs THEN 'random-weight inputs' ELSE '' END
           || CASE WHEN random_inputs AND warnings <> '' THEN '; ' ELSE '' END
           || CASE WHEN warnings <> '' THEN 'fewer members than asked' ELSE '' END AS note
FROM entries
ORDER BY position, entry
