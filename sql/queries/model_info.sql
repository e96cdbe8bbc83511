-- What the runs of a model are (for search, serve and caption to say): task, the dataset each
-- was trained on, and whether it descends from random-weight stand-ins. :runs lists run ids,
-- comma-separated, in the model's order.
SELECT run_id, task, dataset, random_inputs
FROM run_info
WHERE POSITION(',' || run_id || ',' IN ',' || :runs || ',') > 0
