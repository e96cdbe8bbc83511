-- Table 2: audio captioning on a split (eval by default) — the most-frequent-caption baseline
-- of one dataset (NULL: the only dataset with fine-tuned caption runs, named in every row)
-- and every caption system built on it, with METEOR, CIDEr-D, SPICE, SPIDEr and SPIDEr-FL. A
-- metric whose asset is missing is NULL in the registry; its reason is in the matching _reason
-- column, which reports show as "n/a (reason)"; its 95 % bootstrap interval in X_low/X_high
-- (`report table2 --ci`). Rows whose models descend from random-weight
-- stand-ins say so.
-- family: caption
-- param: split = eval
-- param: dataset = NULL
-- plot: bars
WITH target AS (
    SELECT COALESCE(CAST(:dataset AS VARCHAR), (SELECT dataset FROM target_datasets WHERE family = 'caption')) AS dataset
),
baseline AS (
    SELECT run_id FROM run_info
    WHERE family = 'baseline' AND output = 'caption' AND status = 'finished' AND dataset = (SELECT dataset FROM target)
    ORDER BY finished_at DESC, run_id
    LIMIT 1
),
entries AS (
    SELECT 1 AS position, 'most-frequent-caption baseline' AS entry, 1 AS members, f.random_inputs,
           '' AS warnings, f.metric, f.value, f.reason, f.ci_low, f.ci_high
    FROM final_scores f JOIN baseline ON baseline.run_id = f.run_id
    WHERE f.split = :split AND f.eval_dataset = f.dataset
    UNION ALL
    SELECT 2, y.name, s.n_members, s.random_inputs, COALESCE(y.warnings, ''), sc.metric, sc.value, sc.reason,
           sc.ci_low, sc.ci_high
    FROM systems y
    JOIN system_scores s ON s.system_id = y.id AND s.split = :split AND s.eval_dataset = (SELECT dataset FROM target)
    JOIN scores sc ON sc.system_id = y.id AND sc.split = :split AND sc.epoch IS NULL
                  AND sc.dataset_id = (SELECT d.id FROM datasets d WHERE d.name = (SELECT dataset FROM target))
    WHERE y.kind = 'caption'
)
SELECT entry AS system,
       (SELECT dataset FROM target) AS dataset,
       members,
       MAX(CASE WHEN metric = 'meteor' THEN value END) AS "METEOR",
       MAX(CASE WHEN metric = 'meteor' THEN reason END) AS "METEOR_reason",
       MAX(CASE WHEN metric = 'meteor' THEN ci_low END) AS "METEOR_low",
       MAX(CASE WHEN metric = 'meteor' THEN ci_high END) AS "METEOR_high",
       MAX(CASE WHEN metric = 'cider_d' THEN value END) AS "CIDEr-D",
       MAX(CASE WHEN metric = 'cider_d' THEN reason END) AS "CIDEr-D_reason",
       MAX(CASE WHEN metric = 'cider_d' THEN ci_low END) AS "CIDEr-D_low",
       MAX(CASE WHEN metric = 'cider_d' THEN ci_high END) AS "CIDEr-D_high",
       MAX(CASE WHEN metric = 'spice' THEN value END) AS "SPICE",
       MAX(CASE WHEN metric = 'spice' THEN reason END) AS "SPICE_reason",
       MAX(CASE WHEN metric = 'spice' THEN ci_low END) AS "SPICE_low",
       MAX(CASE WHEN metric = 'spice' THEN ci_high END) AS "SPICE_high",
       MAX(CASE WHEN metric = 'spider' THEN value END) AS "SPIDEr",
       MAX(CASE WHEN metric = 'spider' THEN reason END) AS "SPIDEr_reason",
       MAX(CASE WHEN metric = 'spider' THEN ci_low END) AS "SPIDEr_low",
       MAX(CASE WHEN metric = 'spider' THEN ci_high END) AS "SPIDEr_high",
       MAX(CASE WHEN metric = 'spider_fl' THEN value END) AS "SPIDEr-FL",
       MAX(CASE WHEN metric = 'spider_fl' THEN reason END) AS "SPIDEr-FL_reason",
       MAX(CASE WHEN metric = 'spider_fl' THEN ci_low END) AS "SPIDEr-FL_low",
       MAX(CASE WHEN metric = 'spider_fl' THEN ci_high END) AS "SPIDEr-FL_high",
       CASE WHEN random_inputs THEN 'random-weight inputs' ELSE '' END
           || CASE WHEN random_inputs AND warnings <> '' THEN '; ' ELSE '' END
           || CASE WHEN warnings <> '' THEN 'fewer members than asked' ELSE '' END AS note
FROM entries
GROUP BY position, entry, members, random_inputs, warnings
ORDER BY position, entry
