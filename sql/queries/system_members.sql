-- The members of one system (by system id) in rank order, with what each run is and whether
-- it descends from random-weight stand-ins.
SELECT m.rank,
       m.run_id,
       i.task,
       COALESCE(i.tag_loss, '') AS tag_loss,
       COALESCE(i.encoder_task, '') AS encoder,
       i.dataset,
       m.weight,
       CASE WHEN i.random_inputs THEN 'random-weight inputs' ELSE '' END AS note
FROM system_members m
JOIN run_info i ON i.run_id = m.run_id
WHERE m.system_id = :system
ORDER BY m.rank
