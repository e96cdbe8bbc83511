-- The systems that have a run among their members, with its rank and weight there.
SELECT y.id AS system_id, y.name, y.kind, m.rank, m.weight
FROM system_members m
JOIN systems y ON y.id = m.system_id
WHERE m.run_id = :run
ORDER BY y.kind, y.name
