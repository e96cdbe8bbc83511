-- One page of the runs table sorted by the selection metric's name, its final value on val
-- or eval (of the dataset each run was trained on), or the tag loss: like runs_page.sql (same
-- filters, same output), but every matching run's config is read for its selection metric
-- and tag loss (a captioner's from its encoder's config), which is what makes these sorts
-- cost more. :sort is one of metric, val, eval, tag_loss.
-- param: task = NULL
-- param: dataset = NULL
-- param: status = NULL
-- param: q = NULL
-- param: sort = eval
-- param: descending = 1
-- param: page_size = 50
-- param: page_offset = 0
WITH picked AS (
    SELECT r.id AS run_id, r.dataset_id, r.started_at, t.tag_loss AS has_tag_loss,
           CAST(r.config_json AS JSON) ->> 'encoder_run' AS encoder_run,
           CAST(r.config_json AS JSON) ->> 'tag_loss' AS own_tag_loss,
           COALESCE(CAST(r.config_json AS JSON) ->> 'select_metric', t.select_metric) AS select_metric
    FROM runs r
    LEFT JOIN tasks t ON t.name = r.task
    LEFT JOIN datasets d ON d.id = r.dataset_id
    WHERE (CAST(:task AS VARCHAR) IS NULL OR r.task = CAST(:task AS VARCHAR))
      AND (CAST(:dataset AS VARCHAR) IS NULL OR d.name = CAST(:dataset AS VARCHAR))
      AND (CAST(:status AS VARCHAR) IS NULL OR r.status = CAST(:status AS VARCHAR))
      AND (CAST(:q AS VARCHAR) IS NULL
           OR POSITION(LOWER(CAST(:q AS VARCHAR)) IN LOWER(r.id || ' ' || r.task || ' ' || COALESCE(d.name, '') || ' '
               || r.status || ' ' || COALESCE(r.host, '') || ' ' || COALESCE(r.git_rev, '') || ' '
               || COALESCE(r.parent_run_id, '') || ' ' || r.config_json)) > 0)
),
keyed AS (
    SELECT p.run_id, p.started_at, p.select_metric,
           CASE WHEN p.has_tag_loss THEN p.own_tag_loss
                WHEN et.tag_loss THEN CAST(e.config_json AS JSON) ->> 'tag_loss' END AS tag_loss,
           MAX(CASE WHEN s.split = 'val' THEN s.value END) AS val,
           MAX(CASE WHEN s.split = 'eval' THEN s.value END) AS eval
    FROM picked p
    LEFT JOIN runs e ON e.id = p.encoder_run
    LEFT JOIN tasks et ON et.name = e.task
    LEFT JOIN scores s ON s.run_id = p.run_id AND s.metric = p.select_metric AND s.epoch IS NULL
                      AND (s.dataset_id IS NULL OR s.dataset_id = p.dataset_id)
    GROUP BY p.run_id, p.started_at, p.select_metric, p.has_tag_loss, p.own_tag_loss, et.tag_loss, e.config_json
)
SELECT run_id, COUNT(*) OVER () AS n_total
FROM keyed
ORDER BY
    CASE WHEN :descending = 0 THEN CASE CAST(:sort AS VARCHAR) WHEN 'metric' THEN select_metric
        WHEN 'tag_loss' THEN tag_loss END END ASC NULLS LAST,
    CASE WHEN :descending = 1 THEN CASE CAST(:sort AS VARCHAR) WHEN 'metric' THEN select_metric
        WHEN 'tag_loss' THEN tag_loss END END DESC NULLS LAST,
    CASE WHEN :descending = 0 THEN CASE CAST(:sort AS VARCHAR) WHEN 'val' THEN val WHEN 'eval' THEN eval END END ASC NULLS LAST,
    CASE WHEN :descending = 1 THEN CASE CAST(:sort AS VARCHAR) WHEN 'val' THEN val WHEN 'eval' THEN eval END END DESC NULLS LAST,
    started_at DESC,
    run_id
LIMIT :page_size OFFSET :page_offset
