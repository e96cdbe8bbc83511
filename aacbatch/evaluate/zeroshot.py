"""Zero-shot classification metrics: rank a dataset's label names for each clip by how close
their text embeddings are to the clip's audio embedding, as the CLAP papers evaluate ESC-50.

* **Prompts.** Each label enters the text encoder through one or more templates
  (``"this is the sound of {label}"``); a label's embedding is the mean of its prompts' unit
  embeddings, renormalised (several prompts are averaged, as in the CLAP papers).
* **Top-k accuracy.** A clip counts as correct at ``k`` when *one of its labels* is among the
  ``k`` best-scored labels. For a single-label corpus (ESC-50, UrbanSound8K) this is the usual
  top-k accuracy; for a multi-label one (SynthCaps' tags) it asks for any of the clip's events.
  Ties are pessimistic, as in the retrieval metrics: a label scored equal to the clip's best
  label ranks before it, so a constant score matrix gets chance level or below, never more.
* **Chance.** The accuracy a uniformly random ranking of the labels has in expectation, per
  clip ``1 - C(K - m, k) / C(K, k)`` for ``K`` labels of which the clip has ``m`` — ``k / K``
  for a single label. It is exact, not simulated, and is what a trained model must beat.

Intervals resample clips (:mod:`aacbatch.evaluate.uncertainty`), like every final score.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from math import comb

import numpy as np

import aacbatch
from aacbatch.errors import InputError
from aacbatch.evaluate.scored import Scored, intervals_of
from aacbatch.evaluate.statistics import mean_statistic
from aacbatch.registry.runs import ZEROSHOT_PREFIX
from aacbatch.resources import code_revision

PREFIX = ZEROSHOT_PREFIX  # every zero-shot metric name starts so (other evaluations leave these rows alone)
TOP_K = (1, 5)
DEFAULT_PROMPTS = ("this is the sound of {label}",)


def check_prompts(prompts: Sequence[str]) -> tuple[str, ...]:
    """The templates, each holding the field ``{label}`` and no other; the defaults when none."""
    prompts = tuple(prompts) or DEFAULT_PROMPTS
    for prompt in prompts:
        try:
            fields = [name for _, name, _, _ in string.Formatter().parse(prompt) if name is not None]
        except ValueError as exc:
            raise InputError(f"prompt {prompt!r} is not a template ({exc}): write braces as {{{{ and }}}}") from None
        if fields.count("label") != 1 or len(fields) != 1:
            raise InputError(f"prompt {prompt!r} must hold {{label}} exactly once and no other {{field}}, "
                             "e.g. --prompt \"this is the sound of {label}\"")
    if len(set(prompts)) != len(prompts):
        raise InputError("a --prompt is given twice: give each template once")
    return prompts


def prompt_texts(labels: Sequence[str], prompts: Sequence[str]) -> list[str]:
    """The K × P texts to embed, label-major: ``texts[k * P + p]`` is label k in prompt p."""
    return [prompt.format(label=label) for label in labels for prompt in prompts]


def label_embeddings(text: np.ndarray, n_labels: int) -> np.ndarray:
    """(K * P, E) prompt embeddings, label-major → (K, E) unit label embeddings (mean over prompts)."""
    if text.ndim != 2 or text.shape[0] % n_labels:
        raise ValueError(f"need (K * P, E) embeddings for K = {n_labels} labels, got {text.shape}")
    unit = text / np.maximum(np.linalg.norm(text, axis=1, keepdims=True), 1e-12)
    mean = unit.reshape(n_labels, -1, text.shape[1]).mean(axis=1)
    return (mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def best_label_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(N,) 0-based pessimistic rank of each clip's best-scored label of its own.

    scores: (N, K) clip × label scores, higher is better; targets: (N, K) bool, each row with at
    least one True. The rank is the number of *other* labels scored at least as high, so the
    clip is correct at ``k`` exactly when it is below ``k``.
    """
    scores, targets = np.asarray(scores, dtype=np.float64), np.asarray(targets, dtype=bool)
    if scores.ndim != 2 or targets.shape != scores.shape:
        raise ValueError(f"need scores and targets of one (N, K) shape, got {scores.shape} and {targets.shape}")
    if not targets.any(axis=1).all():
        raise ValueError("every clip needs at least one label")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinite values")
    best = np.where(targets, scores, -np.inf).max(axis=1)
    return ((scores >= best[:, None]) & ~targets).sum(axis=1)


def chance_accuracy(n_targets: np.ndarray, n_labels: int, k: int) -> np.ndarray:
    """(N,) expected top-k accuracy of a random ranking, for clips with ``n_targets`` labels each."""
    k = min(k, n_labels)
    return np.array([1.0 - comb(n_labels - m, k) / comb(n_labels, k) for m in np.asarray(n_targets)])


@dataclass(frozen=True)
class Classified:
    """One split classified: the (N, K) scores, targets and each clip's best-label rank."""

    clip_ids: tuple[str, ...]
    labels: tuple[str, ...]
    scores: np.ndarray
    targets: np.ndarray
    ranks: np.ndarray

    def top1(self) -> np.ndarray:
        """(N,) index of each clip's best-scored label."""
        return self.scores.argmax(axis=1)


def classify(clip_ids: Sequence[str], labels: Sequence[str], scores: np.ndarray, targets: np.ndarray) -> Classified:
    return Classified(tuple(clip_ids), tuple(labels), scores, targets, best_label_ranks(scores, targets))


def score_zeroshot(result: Classified, prompts: Sequence[str], rows: np.ndarray | None = None) -> Scored:
    """Top-k and chance accuracy of the clips ``rows`` (default: all), with intervals and provenance."""
    rows = np.arange(len(result.clip_ids)) if rows is None else np.asarray(rows)
    ids = [result.clip_ids[r] for r in rows]
    n_targets = result.targets[rows].sum(axis=1)
    statistics = {}
    for k in TOP_K:
        statistics[f"{PREFIX}top{k}"] = mean_statistic(ids, (result.ranks[rows] < k).astype(np.float64))
        statistics[f"{PREFIX}chance_top{k}"] = mean_statistic(ids, chance_accuracy(n_targets, len(result.labels), k))
    record = zeroshot_provenance(prompts, len(result.labels))
    return Scored({name: s.value() for name, s in statistics.items()}, {}, intervals_of(statistics),
                  {name: record for name in statistics})


def confusion(result: Classified) -> np.ndarray:
    """(K, K) true label × best-scored label: each clip adds 1 to its row's predicted column,
    split evenly over its labels' rows when it has several."""
    matrix = np.zeros((len(result.labels),) * 2)
    weight = result.targets / result.targets.sum(axis=1, keepdims=True)
    np.add.at(matrix.T, result.top1(), weight)
    return matrix


def zeroshot_provenance(prompts: Sequence[str], n_labels: int) -> dict:
    """What computed a zero-shot score: this module, the templates and the number of labels."""
    return {"implementation": ["aacbatch.evaluate.zeroshot (mean of unit prompt embeddings per label; a clip is "
                               "correct at k when one of its labels is among the k best; pessimistic ties)"],
            "versions": {"aacbatch": aacbatch.__version__, "aacbatch_git": code_revision()}, "sha256": {},
            "prompts": list(prompts), "n_labels": n_labels}
