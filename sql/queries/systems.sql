-- Systems with their kind, member count, headline score on val and eval (retrieval:
-- text→audio mAP@10; captioning: CIDEr-D), whether a member descends from random-weight
-- stand-ins, when they were built and their warnings.
SELECT y.name,
       y.kind,
       (SELECT COUNT(*) FROM system_members m WHERE m.system_id = y.id) AS members,
       CASE y.kind WHEN 'retrieval' THEN 'mAP@10' ELSE 'CIDEr-D' END AS metric,
       MAX(CASE WHEN s.split = 'val' THEN CASE y.kind WHEN 'retrieval' THEN s.t2a_map10 ELSE s.cider_d END END) AS val,
       MAX(CASE WHEN s.split = 'eval' THEN CASE y.kind WHEN 'retrieval' THEN s.t2a_map10 ELSE s.cider_d END END) AS eval,
       CASE WHEN MAX(CASE WHEN s.random_inputs THEN 1 ELSE 0 END) = 1 THEN 'random-weight inputs' ELSE '' END AS note,
       SUBSTR(CAST(y.created_at AS VARCHAR), 1, 19) AS built,
       COALESCE(y.warnings, '') AS warnings
FROM systems y
LEFT JOIN system_scores s ON s.system_id = y.id
GROUP BY y.id, y.name, y.kind, y.created_at, y.warnings
ORDER BY y.kind, y.name
