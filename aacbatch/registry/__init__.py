"""The SQL registry: every dataset, clip, feature set, run, score, prediction and system.

The registry is a sink — other packages write to it and read from it, it imports none of
them. The schema lives in :mod:`aacbatch.registry.schema` and is created only by Alembic
revisions in ``migrations/``.
"""
