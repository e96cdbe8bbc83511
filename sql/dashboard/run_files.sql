-- A run's files: its checkpoints (the best first, then by epoch) and its split-level
-- artifacts (such as similarity matrices) with the dataset and split they were computed on.
-- Paths are as stored (@home/…, @cache/…); the caller resolves them.
SELECT 'checkpoint' AS what, c.id, c.epoch, c.is_best, CAST(NULL AS VARCHAR) AS label, c.path, c.created_at
FROM checkpoints c
WHERE c.run_id = :run
UNION ALL
SELECT 'artifact', p.id, CAST(NULL AS INTEGER), FALSE, p.kind || ' · ' || COALESCE(d.name, rd.name, '?') || ' / ' || p.split,
       p.artifact_path, p.created_at
FROM predictions p
JOIN runs r ON r.id = p.run_id
LEFT JOIN datasets d ON d.id = p.dataset_id
LEFT JOIN datasets rd ON rd.id = r.dataset_id
WHERE p.run_id = :run AND p.artifact_path IS NOT NULL
ORDER BY what DESC, is_best DESC, epoch DESC NULLS LAST, label, created_at DESC
