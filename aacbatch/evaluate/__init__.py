"""Metrics: retrieval (R@k, mAP@10; DCASE a2t), captioning (BLEU, ROUGE-L, METEOR, CIDEr-D, SPICE, SPIDEr,
SPIDEr-FL, SPIDEr-max, FENSE, Vocab), bootstrap intervals and paired comparisons, provenance."""

from aacbatch.evaluate.retrieval import retrieval_metrics

__all__ = ["retrieval_metrics"]
