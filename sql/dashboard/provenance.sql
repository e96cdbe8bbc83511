-- The provenance records in :ids (comma-separated): how a score was computed — the
-- implementation, versions, SHA-256 of every jar, checkpoint and model folder used, the
-- tokenisation — as the JSON the scoring code recorded.
SELECT p.id, p.record_json
FROM provenance p
WHERE p.id IN (SELECT UNNEST(STRING_TO_ARRAY(:ids, ',')))
ORDER BY p.id
