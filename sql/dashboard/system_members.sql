-- The members of the systems in :systems (comma-separated ids), in rank order, with their
-- weights (run_rows.sql says what each run is).
SELECT m.system_id, m.rank, m.run_id, m.weight
FROM system_members m
WHERE m.system_id IN (SELECT UNNEST(STRING_TO_ARRAY(:systems, ',')))
ORDER BY m.system_id, m.rank
