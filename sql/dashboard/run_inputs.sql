-- What the runs in :runs (comma-separated ids) were made from, one row per (run, input,
-- role): the parent it was initialised from (--init-from), its encoder (a captioner's
-- encoder_run), its initial audio encoder (audio_init), and the runs behind the feature sets
-- it read (a tags set's teacher, an encoded set's run). Each input with its task, training
-- dataset, status and random weights (NULL task: not a run of this registry, e.g. a
-- checkpoint file). Called level by level to walk a run's ancestry.
WITH listed AS (
    SELECT r.id, r.parent_run_id, r.config_json, r.feature_sets_json
    FROM runs r
    WHERE r.id IN (SELECT UNNEST(STRING_TO_ARRAY(:runs, ',')))
),
links AS (
    SELECT id AS run_id, parent_run_id AS input_id, 'init-from' AS role FROM listed WHERE parent_run_id IS NOT NULL
    UNION ALL
    SELECT id, CAST(config_json AS JSON) ->> 'encoder_run', 'encoder' FROM listed
    UNION ALL
    SELECT id, CAST(config_json AS JSON) ->> 'audio_init', 'audio init' FROM listed
    UNION ALL
    SELECT l.id, CAST(f.spec_json AS JSON) -> 'params' ->> 'teacher', 'teacher (' || f.name || ')'
    FROM listed l JOIN feature_sets f ON POSITION(f.id IN l.feature_sets_json) > 0
    UNION ALL
    SELECT l.id, CAST(f.spec_json AS JSON) -> 'params' ->> 'run', 'features (' || f.name || ')'
    FROM listed l JOIN feature_sets f ON POSITION(f.id IN l.feature_sets_json) > 0
)
SELECT k.run_id, k.input_id, k.role, i.task AS input_task, d.name AS input_dataset, i.status AS input_status,
       i.random_weights AS input_random
FROM links k
LEFT JOIN runs i ON i.id = k.input_id
LEFT JOIN datasets d ON d.id = i.dataset_id
WHERE k.input_id IS NOT NULL AND k.input_id <> ''
ORDER BY k.run_id, k.role, k.input_id
