-- Search indexes (`aacbatch index`): folder, searchable files, the model that built them
-- (a system's name, else the run id), whether they carry captions, and the current version.
SELECT d.name AS "index",
       d.source_path AS folder,
       d.n_clips AS files,
       COALESCE(f.spec_json::JSON ->> 'system', f.spec_json::JSON -> 'runs' ->> 0) AS model,
       CASE WHEN d.n_captions > 0 THEN 'yes' ELSE 'no' END AS captions,
       f.updated_at AS updated,
       f.path
FROM datasets d
JOIN feature_sets f ON f.dataset_id = d.id AND f.kind = 'index'
WHERE d.format = 'index'
ORDER BY d.name
