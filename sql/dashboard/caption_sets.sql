-- The (dataset, split) pairs a run or system has generated captions for, with their number.
-- :owner is a run id or a system id.
SELECT COALESCE(d.name, rd.name) AS dataset, p.split, COUNT(*) AS n_captions
FROM predictions p
LEFT JOIN runs r ON r.id = p.run_id
LEFT JOIN datasets d ON d.id = p.dataset_id
LEFT JOIN datasets rd ON rd.id = r.dataset_id
WHERE (p.run_id = :owner OR p.system_id = :owner) AND p.kind = 'caption'
GROUP BY COALESCE(d.name, rd.name), p.split
ORDER BY dataset, p.split
