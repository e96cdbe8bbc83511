-- What the dashboard shows of the runs in :runs (comma-separated ids, at most a page of
-- them): run_info's columns — family, output, training dataset, encoder run and task, tag
-- loss, selection metric, whether it descends from random-weight stand-ins (through parent
-- and encoder links, as run_info) — plus why it failed and its selection metric's final value
-- on val and eval of the dataset it was trained on. Computed for the listed runs only:
-- run_info derives them for every run of the registry, which costs about 0.3 s at 10,000 runs.
WITH RECURSIVE listed AS (
    SELECT r.id, r.task, r.dataset_id, r.parent_run_id, r.seed, r.status, r.random_weights, r.error, r.started_at,
           r.finished_at,
           CAST(r.config_json AS JSON) ->> 'encoder_run' AS encoder_run,
           CAST(r.config_json AS JSON) ->> 'tag_loss' AS own_tag_loss,
           CAST(r.config_json AS JSON) ->> 'select_metric' AS own_metric
    FROM runs r
    WHERE r.id IN (SELECT UNNEST(STRING_TO_ARRAY(:runs, ',')))
),
up(run_id, input_id) AS (  -- each listed run and everything it descends from
    SELECT CAST(id AS VARCHAR), CAST(id AS VARCHAR) FROM listed
    UNION
    SELECT u.run_id, CAST(CASE k.n WHEN 0 THEN x.parent_run_id ELSE CAST(x.config_json AS JSON) ->> 'encoder_run' END AS VARCHAR)
    FROM up u
    JOIN runs x ON x.id = u.input_id
    CROSS JOIN (VALUES (0), (1)) AS k(n)
),
random_up AS (
    SELECT DISTINCT u.run_id FROM up u JOIN runs x ON x.id = u.input_id WHERE x.random_weights
),
info AS (
    SELECT l.id AS run_id, l.task, COALESCE(t.family, l.task) AS family, t.output, d.name AS dataset, l.dataset_id,
           l.parent_run_id, l.encoder_run, e.task AS encoder_task,
           CASE WHEN t.tag_loss THEN l.own_tag_loss WHEN et.tag_loss THEN CAST(e.config_json AS JSON) ->> 'tag_loss' END
               AS tag_loss,
           COALESCE(l.own_metric, t.select_metric) AS select_metric,
           l.seed, l.status, l.random_weights, ru.run_id IS NOT NULL AS random_inputs, l.error, l.started_at, l.finished_at
    FROM listed l
    LEFT JOIN tasks t ON t.name = l.task
    LEFT JOIN datasets d ON d.id = l.dataset_id
    LEFT JOIN runs e ON e.id = l.encoder_run
    LEFT JOIN tasks et ON et.name = e.task
    LEFT JOIN random_up ru ON ru.run_id = l.id
),
finals AS (  -- the listed runs' final scores first: joined to info directly, a planner may hash all of them
    SELECT s.run_id, s.dataset_id, s.split, s.metric, s.value FROM scores s
    WHERE s.epoch IS NULL AND s.run_id IN (SELECT id FROM listed)
)
SELECT i.*,
       MAX(CASE WHEN s.split = 'val' THEN s.value END) AS val,
       MAX(CASE WHEN s.split = 'eval' THEN s.value END) AS eval
FROM info i
LEFT JOIN finals s ON s.run_id = i.run_id AND s.metric = i.select_metric
                  AND (s.dataset_id IS NULL OR s.dataset_id = i.dataset_id)
GROUP BY i.run_id, i.task, i.family, i.output, i.dataset, i.dataset_id, i.parent_run_id, i.encoder_run, i.encoder_task,
         i.tag_loss, i.select_metric, i.seed, i.status, i.random_weights, i.random_inputs, i.error, i.started_at,
         i.finished_at
