"""Acoustic audit: duplicate and near-duplicate audio within and across datasets.

``find_overlaps(mels, datasets, pairs=...)`` takes cached CNN14 log-mels and returns
:class:`Match` records (clip pair, offset, shared stretch, score); see
:mod:`aacbatch.audit.overlap` for the method and :mod:`aacbatch.audit.planted` for the
planted near-duplicates it is measured on.
"""

from aacbatch.audit.fingerprint import FingerprintParams
from aacbatch.audit.overlap import FRAME_RATE, PAIRS, AuditParams, Match, find_overlaps
from aacbatch.audit.verify import VerifyParams

__all__ = ["FRAME_RATE", "PAIRS", "AuditParams", "FingerprintParams", "Match", "VerifyParams", "find_overlaps"]
