-- The datasets a family's finished runs were fine-tuned on (runs with a parent), with how many
-- runs each — what systems and reports default to when exactly one dataset is listed. With no
-- fine-tuned run, the datasets of any finished run of the family.
-- param: family = retrieval
WITH finished AS (
    SELECT dataset, parent_run_id IS NOT NULL AS tuned
    FROM run_info
    WHERE family = :family AND status = 'finished' AND dataset IS NOT NULL
)
SELECT dataset, COUNT(*) AS n_runs
FROM finished
WHERE tuned OR NOT EXISTS (SELECT 1 FROM finished WHERE tuned)
GROUP BY dataset
ORDER BY dataset
