-- Provenance: how each final score of one run (or system, by name) was computed — the
-- implementation, versions (aacbatch and its git revision, Java, packages), the SHA-256 of
-- every jar, checkpoint and model folder used, and the tokenisation — so two numbers computed
-- differently are never compared silently. :run is a run id or prefix, or a system name.
-- param: run = NULL
-- param: split = eval
SELECT COALESCE(SUBSTR(s.run_id, 1, 8), y.name) AS model,
       d.name AS dataset,
       s.split,
       s.metric,
       s.value,
       p.record_json AS provenance
FROM scores s
LEFT JOIN systems y ON y.id = s.system_id
LEFT JOIN datasets d ON d.id = s.dataset_id
LEFT JOIN provenance p ON p.id = s.provenance_id
WHERE s.epoch IS NULL AND s.split = :split
  AND (s.run_id LIKE CAST(:run AS VARCHAR) || '%' OR y.name = CAST(:run AS VARCHAR))
ORDER BY model, dataset, s.metric
