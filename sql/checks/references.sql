-- Registry integrity: every row that refers to another points at one that exists, and every
-- NULL score says why. One row per problem: the table, the row's id and what is wrong.
-- (There are no database-level foreign keys — DuckDB rejects updates of referenced rows —
-- so this is the check that they are kept.)
SELECT 'clips' AS "table", c.id, 'dataset ' || c.dataset_id || ' does not exist' AS problem
FROM clips c LEFT JOIN datasets d ON d.id = c.dataset_id WHERE d.id IS NULL
UNION ALL
SELECT 'captions', x.id, 'clip ' || x.clip_id || ' does not exist'
FROM captions x LEFT JOIN clips c ON c.id = x.clip_id WHERE c.id IS NULL
UNION ALL
SELECT 'splits', s.id, 'clip ' || s.clip_id || ' does not exist'
FROM splits s LEFT JOIN clips c ON c.id = s.clip_id WHERE c.id IS NULL
UNION ALL
SELECT 'feature_sets', f.id, 'dataset ' || f.dataset_id || ' does not exist'
FROM feature_sets f LEFT JOIN datasets d ON d.id = f.dataset_id WHERE d.id IS NULL
UNION ALL
SELECT 'runs', r.id, 'dataset ' || r.dataset_id || ' does not exist'
FROM runs r LEFT JOIN datasets d ON d.id = r.dataset_id WHERE r.dataset_id IS NOT NULL AND d.id IS NULL
UNION ALL
SELECT 'runs', r.id, 'parent run ' || r.parent_run_id || ' does not exist'
FROM runs r LEFT JOIN runs p ON p.id = r.parent_run_id WHERE r.parent_run_id IS NOT NULL AND p.id IS NULL
UNION ALL
SELECT 'checkpoints', k.id, 'run ' || k.run_id || ' does not exist'
FROM checkpoints k LEFT JOIN runs r ON r.id = k.run_id WHERE r.id IS NULL
UNION ALL
SELECT 'scores', s.id, 'belongs to no existing run or system'
FROM scores s LEFT JOIN runs r ON r.id = s.run_id LEFT JOIN systems y ON y.id = s.system_id
WHERE r.id IS NULL AND y.id IS NULL
UNION ALL
SELECT 'scores', s.id, 'is NULL without a reason (' || s.metric || ')'
FROM scores s WHERE s.value IS NULL AND (s.reason IS NULL OR s.reason = '')
UNION ALL
SELECT 'predictions', p.id, 'belongs to no existing run or system'
FROM predictions p LEFT JOIN runs r ON r.id = p.run_id LEFT JOIN systems y ON y.id = p.system_id
WHERE r.id IS NULL AND y.id IS NULL
UNION ALL
SELECT 'system_members', m.id, 'system ' || m.system_id || ' or run ' || m.run_id || ' does not exist'
FROM system_members m LEFT JOIN systems y ON y.id = m.system_id LEFT JOIN runs r ON r.id = m.run_id
WHERE y.id IS NULL OR r.id IS NULL
ORDER BY 1, 3, 2
