-- Datasets with their clip/caption counts and clips per split (source and re-splits).
WITH split_counts AS (
    SELECT dataset_id, name, COUNT(*) AS n
    FROM splits
    GROUP BY dataset_id, name
)
SELECT d.name AS dataset,
       d.format,
       d.n_clips,
       d.n_captions,
       -- PostgreSQL rounds only NUMERIC to n places; DOUBLE PRECISION keeps the column a float
       CAST(ROUND(CAST(SUM(c.duration) / 3600.0 AS NUMERIC(18, 6)), 3) AS DOUBLE PRECISION) AS hours,
       (SELECT STRING_AGG(s.name || '=' || CAST(s.n AS VARCHAR), ' ' ORDER BY s.name)
          FROM split_counts s WHERE s.dataset_id = d.id) AS splits
FROM datasets d
JOIN clips c ON c.dataset_id = d.id
GROUP BY d.id, d.name, d.format, d.n_clips, d.n_captions
ORDER BY d.name
