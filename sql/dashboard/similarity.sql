-- The similarity matrix a run or system (:owner, an id) saved for one split of one dataset:
-- what a paired comparison of two retrieval models reads.
SELECT p.artifact_path
FROM predictions p
LEFT JOIN runs r ON r.id = p.run_id
JOIN datasets d ON d.name = :dataset
WHERE (p.run_id = :owner OR p.system_id = :owner) AND p.kind = 'similarity' AND p.split = :split
  AND COALESCE(p.dataset_id, r.dataset_id) = d.id
ORDER BY p.created_at DESC
LIMIT 1
