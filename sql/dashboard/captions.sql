-- The captions a run or system (:owner, an id) generated for the clips of one split of one
-- dataset, each beside the clip's reference captions: one row per (clip, reference).
SELECT p.clip_id, c.name AS clip, p.text AS prediction, k.caption_index, k.text AS reference
FROM predictions p
LEFT JOIN runs r ON r.id = p.run_id
JOIN datasets d ON d.name = :dataset
JOIN clips c ON c.id = p.clip_id
LEFT JOIN captions k ON k.clip_id = p.clip_id
WHERE (p.run_id = :owner OR p.system_id = :owner) AND p.kind = 'caption' AND p.split = :split
  AND COALESCE(p.dataset_id, r.dataset_id) = d.id
ORDER BY c.idx, c.name, k.caption_index
