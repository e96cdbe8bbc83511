"""Auditing registered datasets: read their cached log-mels, find shared audio, store it.

``audit_datasets`` is what ``aacbatch audit overlap`` runs: every clip of the named datasets
from their ``mel`` feature sets (made once by ``aacbatch featurize mel``), one
:func:`aacbatch.audit.overlap.find_overlaps` over all of them, and one ``audits`` row with its
matches in the registry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from aacbatch.audit.overlap import PAIRS, AuditParams, find_overlaps
from aacbatch.errors import InputError
from aacbatch.featurize.sets import cached_set
from aacbatch.registry.audits import StoredMatch, store_audit
from aacbatch.registry.datasets import split_rows
from aacbatch.registry.store import Registry


@dataclass(frozen=True)
class AuditResult:
    audit_id: str
    n_clips: int
    matches: list[StoredMatch]


def audit_datasets(registry: Registry, datasets: Sequence[str], *, features: str = "mel", pairs: str = "all",
                   params: AuditParams = AuditParams(), workers: int = 1) -> AuditResult:
    """Find clips that share audio within (``pairs="within"``), across (``"across"``) or
    within and across (``"all"``) ``datasets``; the matches are stored and returned."""
    if pairs not in PAIRS:
        raise InputError(f"pairs must be one of {', '.join(PAIRS)}, got {pairs!r}")
    if len(set(datasets)) != len(datasets) or not datasets:
        raise InputError("name each dataset to audit once")
    if pairs == "across" and len(datasets) < 2:
        raise InputError("--pairs across needs two or more datasets")
    mels, owners, clips = [], [], []
    for name in datasets:
        rows = split_rows(registry, name)  # unknown dataset: NotFoundError before any work
        cached = cached_set(registry, name, features)
        reader = cached.store.reader(features)
        mels += reader[cached.store.rows([c.idx for c in rows.clips])]
        owners += [name] * len(rows.clips)
        clips += [(name, c) for c in rows.clips]
    found = find_overlaps(mels, owners, pairs=pairs, params=params, workers=workers)
    rows = [dict(clip_a_id=clips[m.a][1].id, clip_b_id=clips[m.b][1].id, start_a=m.start_a, start_b=m.start_b,
                 duration=m.duration, score=m.score, specificity=m.specificity, votes=m.votes) for m in found]
    audit_id = store_audit(registry, datasets=datasets, pairs=pairs, params=dataclasses.asdict(params),
                           n_clips=len(clips), matches=rows)
    matches = [StoredMatch(clips[m.a][0], clips[m.a][1].name, clips[m.b][0], clips[m.b][1].name, m.start_a, m.start_b,
                           m.duration, m.score) for m in found]
    return AuditResult(audit_id, len(clips), matches)
