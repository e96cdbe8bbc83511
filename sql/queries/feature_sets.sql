-- Feature sets per dataset (:dataset NULL for all), newest first.
SELECT d.name AS dataset,
       f.name,
       f.kind,
       f.status,
       f.n_items,
       CASE WHEN f.random_weights THEN 'random weights' ELSE '' END AS model,
       SUBSTR(f.fingerprint, 1, 12) AS fingerprint,
       f.path
FROM feature_sets f
JOIN datasets d ON d.id = f.dataset_id
WHERE CAST(:dataset AS VARCHAR) IS NULL OR d.name = :dataset  -- typed: PostgreSQL cannot infer a bare NULL's type
ORDER BY d.name, f.name
