"""Datasets: ingest of real corpora, the SynthCaps generator and splits."""
