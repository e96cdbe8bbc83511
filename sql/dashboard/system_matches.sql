-- The systems a reference names: the one with that name or id, else every system whose id
-- starts with it (a prefix of at least 4 characters); at most 6.
SELECT y.id AS system_id, y.name, y.kind, y.created_at
FROM systems y
WHERE y.name = :ref OR y.id = :ref
   OR (LENGTH(:ref) >= 4 AND SUBSTR(y.id, 1, LENGTH(:ref)) = :ref
       AND NOT EXISTS (SELECT 1 FROM systems x WHERE x.name = :ref OR x.id = :ref))
ORDER BY y.created_at, y.id
LIMIT 6
