-- The runs a reference names: the run with exactly that id, else every run whose id starts
-- with it (a prefix of at least 4 characters), oldest first; at most 6 (more means "and more").
SELECT r.id AS run_id, r.task, d.name AS dataset, r.status, r.started_at
FROM runs r
LEFT JOIN datasets d ON d.id = r.dataset_id
WHERE r.id = :ref
   OR (LENGTH(:ref) >= 4 AND SUBSTR(r.id, 1, LENGTH(:ref)) = :ref
       AND NOT EXISTS (SELECT 1 FROM runs x WHERE x.id = :ref))
ORDER BY r.started_at, r.id
LIMIT 6
