"""Metrics: retrieval (R@k, mAP@10) and captioning (METEOR, CIDEr-D, SPICE, SPIDEr, SPIDEr-FL)."""

from aacbatch.evaluate.retrieval import retrieval_metrics

__all__ = ["retrieval_metrics"]
