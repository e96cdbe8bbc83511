"""Search your own audio with a trained retrieval model.

* :mod:`~aacbatch.search.encoders` — a retrieval run (or every member of a system) loaded to
  embed audio files and text queries;
* :mod:`~aacbatch.search.index` — ``aacbatch index``: a folder of audio → a versioned,
  incremental Zarr index registered in the registry;
* :mod:`~aacbatch.search.query` — ``aacbatch search``: rank an index's files for a query;
* :mod:`~aacbatch.search.web` — ``aacbatch serve``: the same search as a local web page.
"""
