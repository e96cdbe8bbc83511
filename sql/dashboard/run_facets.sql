-- The choices of the runs table's filters: every task, training dataset and status with its
-- number of runs.
SELECT 'task' AS facet, r.task AS value, COUNT(*) AS n_runs FROM runs r GROUP BY r.task
UNION ALL
SELECT 'dataset', d.name, COUNT(*) FROM runs r JOIN datasets d ON d.id = r.dataset_id GROUP BY d.name
UNION ALL
SELECT 'status', r.status, COUNT(*) FROM runs r GROUP BY r.status
ORDER BY facet, value
