-- One system (by id): its definition — the query text that chose its members, the
-- parameters it ran with, its fingerprint and warnings — and the dataset it was built on.
SELECT y.id AS system_id, y.name, y.kind, d.name AS dataset, y.query_text, y.params_json, y.fingerprint,
       COALESCE(y.warnings, '') AS warnings, y.created_at
FROM systems y
LEFT JOIN datasets d ON d.id = y.dataset_id
WHERE y.id = :system
