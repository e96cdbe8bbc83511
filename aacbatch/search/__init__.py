"""Search your own audio with a trained retrieval model.

* :mod:`~aacbatch.search.encoders` — a retrieval run (or every member of a system) loaded to
  embed audio files and text queries;
* :mod:`~aacbatch.search.windows` — which stretches of a file an index embeds (its start, or
  overlapping windows of the whole file) and how windows become hits;
* :mod:`~aacbatch.search.index` — ``aacbatch index``: a folder of audio → a versioned,
  incremental Zarr index registered in the registry;
* :mod:`~aacbatch.search.ann` — approximate nearest-neighbour candidates for large indexes;
* :mod:`~aacbatch.search.query` — ``aacbatch search``: rank an index's windows for a text, an
  audio example or both;
* :mod:`~aacbatch.search.embed` — ``aacbatch embed``: embeddings out, as Parquet or NumPy;
* :mod:`~aacbatch.search.web` — ``aacbatch serve``: the same search as a local web page.
"""
