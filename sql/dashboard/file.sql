-- The stored path of one checkpoint or artifact (by its row id) of one run (:owner): what the
-- dashboard's file links may serve, and nothing else.
SELECT c.path FROM checkpoints c WHERE c.id = :id AND c.run_id = :owner
UNION ALL
SELECT p.artifact_path FROM predictions p WHERE p.id = :id AND p.run_id = :owner AND p.artifact_path IS NOT NULL
