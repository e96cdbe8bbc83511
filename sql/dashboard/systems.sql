-- Every system: kind, the dataset its members were selected on, its number of members, its
-- headline score (retrieval: text→audio mAP@10; captioning: CIDEr-D) on val and eval of that
-- dataset, when it was built and its warnings. (Whether members descend from random-weight
-- stand-ins comes from run_rows.sql on system_members.sql's runs.)
WITH headline AS (
    SELECT s.system_id,
           MAX(CASE WHEN s.split = 'val' THEN s.value END) AS val,
           MAX(CASE WHEN s.split = 'eval' THEN s.value END) AS eval
    FROM scores s
    JOIN systems y ON y.id = s.system_id
    WHERE s.epoch IS NULL AND (s.dataset_id IS NULL OR s.dataset_id = y.dataset_id)
      AND s.metric = CASE y.kind WHEN 'retrieval' THEN 't2a/mAP@10' ELSE 'cider_d' END
    GROUP BY s.system_id
)
SELECT y.id AS system_id, y.name, y.kind, d.name AS dataset,
       (SELECT COUNT(*) FROM system_members m WHERE m.system_id = y.id) AS n_members,
       CASE y.kind WHEN 'retrieval' THEN 't2a/mAP@10' ELSE 'cider_d' END AS metric, h.val, h.eval,
       y.created_at, COALESCE(y.warnings, '') AS warnings
FROM systems y
LEFT JOIN datasets d ON d.id = y.dataset_id
LEFT JOIN headline h ON h.system_id = y.id
ORDER BY y.kind, y.name
