"""Batch featurization: every expensive input is computed once and cached in Zarr.

One module per feature kind (``logmel`` is the CNN14 front end). Nothing here imports
training code; torch is imported lazily only by the kinds that run a model.
"""
