-- One run's own columns that only its page shows (run_rows.sql has the rest): its config,
-- the feature sets it read, where and from which code revision it ran.
SELECT r.config_json, r.feature_sets_json, r.host, r.git_rev
FROM runs r
WHERE r.id = :run
