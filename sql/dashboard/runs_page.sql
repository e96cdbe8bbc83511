-- One page of the runs table sorted by a column every run row has (no JSON is parsed, so a
-- page costs the same at 10,000 runs as at 10): the ids of the runs on the page in order,
-- and in every row the number of runs that match the filters. Filters: task, training
-- dataset, status, and free text matched case-blind against the run id, task, dataset,
-- status, host, git revision, parent run id and config (so a run's id finds the runs made
-- from it). :sort is one of started, run, task, family, dataset, seed, status (checked by
-- the caller; runs_page_by_score.sql sorts by the others). run_rows.sql fills in the rows.
-- param: task = NULL
-- param: dataset = NULL
-- param: status = NULL
-- param: q = NULL
-- param: sort = started
-- param: descending = 1
-- param: page_size = 50
-- param: page_offset = 0
SELECT r.id AS run_id, COUNT(*) OVER () AS n_total
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
ORDER BY
    CASE WHEN :descending = 0 THEN CASE CAST(:sort AS VARCHAR) WHEN 'run' THEN r.id WHEN 'task' THEN r.task
        WHEN 'family' THEN COALESCE(t.family, r.task) WHEN 'dataset' THEN d.name WHEN 'status' THEN r.status END END ASC NULLS LAST,
    CASE WHEN :descending = 1 THEN CASE CAST(:sort AS VARCHAR) WHEN 'run' THEN r.id WHEN 'task' THEN r.task
        WHEN 'family' THEN COALESCE(t.family, r.task) WHEN 'dataset' THEN d.name WHEN 'status' THEN r.status END END DESC NULLS LAST,
    CASE WHEN :descending = 0 AND CAST(:sort AS VARCHAR) = 'seed' THEN r.seed END ASC NULLS LAST,
    CASE WHEN :descending = 1 AND CAST(:sort AS VARCHAR) = 'seed' THEN r.seed END DESC NULLS LAST,
    CASE WHEN :descending = 0 THEN r.started_at END ASC,
    CASE WHEN :descending = 1 THEN r.started_at END DESC,
    r.id
LIMIT :page_size OFFSET :page_offset
