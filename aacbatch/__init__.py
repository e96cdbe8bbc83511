"""aacbatch: language-based audio retrieval and audio captioning, batch-cached."""

__version__ = "0.1.0"
