"""The registry dashboard (``aacbatch serve``): runs, a run's config, lineage, curves, scores,
captions and files, systems, the paper's tables and comparisons, as HTML pages and their JSON
twins, read from the registry with the packaged queries of ``sql/dashboard/``.

* :mod:`~aacbatch.dashboard.reader` — read-only, lock-tolerant reads (stale answers said so);
* :mod:`~aacbatch.dashboard.pages` — what each page shows, as plain data;
* :mod:`~aacbatch.dashboard.views` — the Flask Blueprint (HTML + ``/api``), mounted by
  :func:`aacbatch.search.web.create_app`;
* :mod:`~aacbatch.dashboard.lineage`, :mod:`~aacbatch.dashboard.configs`,
  :mod:`~aacbatch.dashboard.item_scores` — the lineage graph, config diffs, per-clip scores.
"""
