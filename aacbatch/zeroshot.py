"""Zero-shot classification with a retrieval run or system (``aacbatch evaluate zeroshot``).

Each label of the dataset is written into the prompt templates and embedded by the run's own
text side; each clip's cached log-mels by its audio side (the same embedding code as every
cross-dataset retrieval score, :mod:`aacbatch.evaluation`); a clip's labels are ranked by
cosine similarity. A system averages its members' (clips × labels) similarities with their
weights, as a retrieval system averages similarity matrices. Metrics and their definitions:
:mod:`aacbatch.evaluate.zeroshot`.

* **Labels.** The dataset's label vocabulary when ingest recorded one (ESC-50 and
  UrbanSound8K class names in class-id order, SynthCaps' ``labels.txt``), else the distinct
  tags of its clips in sorted order. A clip's labels are its tags; a clip without any known
  label is left out of the scores and counted.
* **Splits.** ``all`` (the default) is every clip of the dataset; any other name is that
  split. Where a split's clips come from several folds (source splits ``fold1``, ``fold2``, …,
  as ESC-50 and UrbanSound8K are ingested), each fold is also scored and stored under its own
  name, so per-fold rows and ``--split fold1`` give the same numbers.

Every input is checked and every score computed before one write transaction: bad input
leaves the registry as it was.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aacbatch.errors import InputError
from aacbatch.evaluate.scored import Scored
from aacbatch.evaluate.zeroshot import (Classified, check_prompts, classify, confusion, label_embeddings,
                                        prompt_texts, score_zeroshot)
from aacbatch.evaluation import clip_embeddings, run_encoder, text_embeddings
from aacbatch.registry.datasets import split_rows
from aacbatch.registry.runs import SplitResult
from aacbatch.registry.schema import Clip
from aacbatch.registry.store import Registry
from aacbatch.registry.systems import system_by_name
from aacbatch.registry.zeroshot import put_zeroshot_scores
from aacbatch.search.encoders import resolve_model

ALL = "all"
FOLD = re.compile(r"fold[0-9]+")


@dataclass(frozen=True)
class ZeroShotResult:
    """What ``evaluate zeroshot`` computed and stored: scores per split (the requested ones and
    the folds inside them), each requested split's classification, and the clips left out."""

    dataset: str
    labels: tuple[str, ...]
    prompts: tuple[str, ...]
    scores: dict[str, Scored]
    classified: dict[str, Classified]
    unlabelled: dict[str, int]


def dataset_labels(dataset_meta: str, clips: Sequence[Clip]) -> tuple[str, ...]:
    """The label vocabulary: the dataset's recorded ``tag_labels``, else its clips' distinct tags."""
    recorded = json.loads(dataset_meta or "{}").get("tag_labels")
    labels = tuple(recorded) if recorded else tuple(sorted({t for c in clips for t in _tags(c)}))
    if not labels:
        raise InputError("the dataset has no labels to classify with: ingest it with its classes (esc50, "
                         "urbansound8k, a folder listing with a label or tags column, SynthCaps' tags.csv)")
    return labels


def evaluate_zeroshot(registry: Registry, *, dataset: str, run: str | None = None, system: str | None = None,
                      splits: Sequence[str] = (ALL,), prompts: Sequence[str] = ()) -> ZeroShotResult:
    """Classify the clips of ``splits`` of ``dataset`` by their labels' prompts; record the scores."""
    prompts = check_prompts(prompts)
    pairs = resolve_model(registry, run, system)
    splits = list(dict.fromkeys(splits)) or [ALL]
    every = split_rows(registry, dataset)
    labels = dataset_labels(every.dataset.meta_json, every.clips)
    chosen = {split: every.clips if split == ALL else split_rows(registry, dataset, split).clips for split in splits}
    column = {label: k for k, label in enumerate(labels)}
    targets = {c.idx: [column[t] for t in _tags(c) if t in column] for c in every.clips}
    scored_clips = {split: [c for c in clips if targets[c.idx]] for split, clips in chosen.items()}
    empty = [split for split, clips in scored_clips.items() if not clips]
    if empty:
        raise InputError(f"split {empty[0]!r} of {dataset!r} has no clip with one of its {len(labels)} labels")
    wanted = sorted({c.idx for clips in scored_clips.values() for c in clips})
    similarity = _label_similarity(registry, pairs, dataset, wanted, labels, prompts)
    row_of = {idx: r for r, idx in enumerate(wanted)}
    scores, classified = {}, {}
    for split, clips in scored_clips.items():
        target = np.zeros((len(clips), len(labels)), dtype=bool)
        for r, clip in enumerate(clips):
            target[r, targets[clip.idx]] = True
        result = classify([c.id for c in clips], labels, similarity[[row_of[c.idx] for c in clips]], target)
        classified[split] = result
        scores[split] = score_zeroshot(result, prompts)
        folds = sorted({c.source_split for c in clips if FOLD.fullmatch(c.source_split)}, key=_fold_number)
        for fold in folds if len(folds) > 1 else ():
            scores[fold] = score_zeroshot(result, prompts, [r for r, c in enumerate(clips) if c.source_split == fold])
    results = {split: SplitResult(s.metrics, s.reasons, intervals=s.intervals, provenance=s.provenance)
               for split, s in scores.items()}
    owner = {"run_id": pairs[0][0]} if run is not None else {"system_id": system_by_name(registry, system).id}
    put_zeroshot_scores(registry, every.dataset.id, results, **owner)
    return ZeroShotResult(dataset, labels, prompts, scores, classified,
                          {split: len(chosen[split]) - len(scored_clips[split]) for split in splits})


def _label_similarity(registry: Registry, pairs: Sequence[tuple[str, float]], dataset: str, clip_idx: list[int],
                      labels: Sequence[str], prompts: Sequence[str]) -> np.ndarray:
    """(N, K) cosine similarity of each clip to each label, averaged over members by weight."""
    total = np.zeros((len(clip_idx), len(labels)))
    for run_id, weight in pairs:
        encoder = run_encoder(registry, run_id)
        text = label_embeddings(text_embeddings(encoder, prompt_texts(labels, prompts)), len(labels))
        total += weight * (clip_embeddings(registry, encoder, dataset, clip_idx) @ text.T)
    return (total / sum(w for _, w in pairs)).astype(np.float32)


def plot_confusion(result: Classified, path: Path, title: str) -> Path:
    """Draw the row-normalised confusion matrix (true label × best-scored label) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = confusion(result)
    rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1e-12)
    size = max(4.0, 0.18 * len(result.labels) + 2.5)
    figure, axes = plt.subplots(figsize=(size + 1.0, size))
    image = axes.imshow(rows, cmap="Blues", vmin=0.0, vmax=1.0)
    ticks = np.arange(len(result.labels))
    font = 8 if len(result.labels) <= 20 else 6 if len(result.labels) <= 40 else 5
    axes.set_xticks(ticks, result.labels, rotation=90, fontsize=font)
    axes.set_yticks(ticks, result.labels, fontsize=font)
    axes.set_xlabel("best-scored label")
    axes.set_ylabel("true label")
    axes.set_title(title, fontsize=9)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the true label's clips")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _tags(clip: Clip) -> list[str]:
    return [t for t in (clip.tags or "").split(";") if t]


def _fold_number(name: str) -> int:
    return int(name[4:])
