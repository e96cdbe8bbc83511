-- The runs made directly from one run (:run, a full id), one row per (user, role) as in
-- run_inputs.sql, each with its task, training dataset, status and random weights. Configs
-- and feature-set specs are parsed only where the id occurs in their text.
WITH links AS (
    SELECT r.id AS run_id, 'init-from' AS role FROM runs r WHERE r.parent_run_id = :run
    UNION ALL
    SELECT r.id, 'encoder' FROM runs r
    WHERE POSITION(:run IN r.config_json) > 0 AND CAST(r.config_json AS JSON) ->> 'encoder_run' = :run
    UNION ALL
    SELECT r.id, 'audio init' FROM runs r
    WHERE POSITION(:run IN r.config_json) > 0 AND CAST(r.config_json AS JSON) ->> 'audio_init' = :run
    UNION ALL
    SELECT r.id, 'teacher (' || f.name || ')'
    FROM feature_sets f JOIN runs r ON POSITION(f.id IN r.feature_sets_json) > 0
    WHERE POSITION(:run IN f.spec_json) > 0 AND CAST(f.spec_json AS JSON) -> 'params' ->> 'teacher' = :run
    UNION ALL
    SELECT r.id, 'features (' || f.name || ')'
    FROM feature_sets f JOIN runs r ON POSITION(f.id IN r.feature_sets_json) > 0
    WHERE POSITION(:run IN f.spec_json) > 0 AND CAST(f.spec_json AS JSON) -> 'params' ->> 'run' = :run
)
SELECT k.run_id, k.role, u.task, d.name AS dataset, u.status, u.random_weights
FROM links k
JOIN runs u ON u.id = k.run_id
LEFT JOIN datasets d ON d.id = u.dataset_id
ORDER BY u.started_at, k.run_id, k.role
