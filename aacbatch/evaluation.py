"""Score any run or system on any registered dataset (``aacbatch evaluate … --dataset D``).

"How does the WavCaps-pretrained model do on Clotho before fine-tuning?", "train on Clotho,
test on AudioCaps", the zero-shot row of a table: a model is scored on another dataset's
split exactly as on its own, and the scores are recorded keyed by (run or system, dataset,
split), so reports can always say which dataset a number is on.

* A **retrieval run** embeds the split's cached log-mels (the dataset's ``mel`` set, made with
  the same front end as the run's) and its captions through the run's own text side — the
  tokenizer and text encoder its caption feature set was made with (see
  :mod:`aacbatch.search.encoders`) — and scores the similarity matrix like training does; the
  matrix is saved as ``runs/<id>/similarity-<dataset>-<split>.npz``.
* A **retrieval system** averages its members' matrices on that split.
* **Caption runs and systems** read the dataset's ``encoded`` set of each member's encoder
  (the feature set name the run was trained with) and beam-search as on their own dataset.

A feature set the dataset lacks is named with the command that makes it.
On the run's own dataset, ``aacbatch evaluate`` rebuilds the training task instead (the
scores a run was selected by are reproduced exactly).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from aacbatch import catalog
from aacbatch.captioning import evaluate_ensemble
from aacbatch.data.items import load_items
from aacbatch.errors import InputError
from aacbatch.evaluate.scored import score_retrieval
from aacbatch.featurize.sets import cached_set
from aacbatch.models.cnn14 import PANNS_CHANNELS
from aacbatch.registry.datasets import get_dataset
from aacbatch.registry.features import feature_set_by_id
from aacbatch.registry.runs import RunRecorder, SplitResult, get_run
from aacbatch.registry.store import Registry
from aacbatch.registry.systems import members_of, put_system_scores, system_by_name
from aacbatch.search.encoders import RunEncoder, load_encoders, members
from aacbatch.systems import mean_similarity, similarity_arrays

TEXT_BATCH = 128
# Log-mel frames per audio batch (batch size × longest clip) of a paper-size CNN14, whose first
# block has 64 channels: activations grow with frames × channels, so a narrower CNN14 takes
# proportionally more frames per batch at the same memory (cnn14-tiny: 16 ×; on 2 busy CPU
# cores 28 instead of 48 ms per 5 s clip, batches of 128 instead of 31).
FRAME_BUDGET = 16_000


def _run_dir(registry: Registry, run_id: str) -> Path:
    return Path(registry.settings.home) / "runs" / run_id


def retrieval_similarity(registry: Registry, run_id: str, dataset: str, split: str) -> dict[str, np.ndarray]:
    """(captions × clips) similarities of ``split`` of ``dataset`` under a retrieval run, with
    each caption's clip column and the clip/caption indexes (the layout runs save)."""
    items = load_items(registry, dataset, split)
    if not items.captions:
        raise InputError(f"split {split!r} of {dataset!r} has no captions to retrieve with")
    encoder = run_encoder(registry, run_id)
    clips = [c.idx for c in items.clips]
    audio = clip_embeddings(registry, encoder, dataset, clips)
    text = text_embeddings(encoder, [c.text for c in items.captions])
    position = {idx: k for k, idx in enumerate(clips)}
    return {"similarity": (text @ audio.T).astype(np.float32), "caption_idx": np.array([c.idx for c in items.captions]),
            "clip_idx": np.array(clips), "relevant": np.array([position[c.clip_idx] for c in items.captions])}


def run_encoder(registry: Registry, run_id: str) -> RunEncoder:
    """A retrieval run's audio and text sides, as search and every cross-dataset score use them."""
    return load_encoders(registry, members(registry, [(get_run(registry, run_id).id, 1.0)]))[0]


def clip_embeddings(registry: Registry, encoder: RunEncoder, dataset: str, clip_idx: Sequence[int]) -> np.ndarray:
    """(N, E) audio embeddings of the clips ``clip_idx`` of ``dataset`` under ``encoder``'s run,
    from the dataset's cached log-mels (made with the run's front end, or refused)."""
    run = get_run(registry, encoder.run_id)
    config = json.loads(run.config_json)
    mel = cached_set(registry, dataset, config["mel"])
    _check_same_spec(registry, run, config["mel"], mel.id, dataset)
    return _embed_audio(encoder, mel.store.reader("mel")[mel.store.rows(list(clip_idx))])


def text_embeddings(encoder: RunEncoder, texts: Sequence[str]) -> np.ndarray:
    """(T, E) text embeddings through the run's own text side, in batches of :data:`TEXT_BATCH`."""
    return np.concatenate([encoder.embed_text(texts[lo:lo + TEXT_BATCH]) for lo in range(0, len(texts), TEXT_BATCH)])


def _embed_audio(encoder: RunEncoder, mels: list[np.ndarray]) -> np.ndarray:
    """(N, E) audio embeddings of ragged log-mels, in length-sorted batches of bounded size."""
    order = np.argsort([len(m) for m in mels], kind="stable")
    out = np.zeros((len(mels), encoder.embed_dim), dtype=np.float32)
    budget = FRAME_BUDGET * PANNS_CHANNELS[0] // encoder.model.audio.config.channels[0]
    start = 0
    while start < len(order):
        stop = start + 1
        while stop < len(order) and (stop - start + 1) * max(len(mels[order[stop]]), 32) <= budget:
            stop += 1
        rows = order[start:stop]
        out[rows] = encoder.embed_audio([mels[r].astype(np.float32) for r in rows])
        start = stop
    return out


def _check_same_spec(registry: Registry, run, set_name: str, set_id: str, dataset: str) -> None:
    """The dataset's set must be made like the run's training set (the same front end)."""
    trained = [s["id"] for s in json.loads(run.feature_sets_json) if s["name"] == set_name]
    mine, theirs = feature_set_by_id(registry, trained[0]) if trained else None, feature_set_by_id(registry, set_id)
    if mine is not None and json.loads(mine.spec_json) != json.loads(theirs.spec_json):
        raise InputError(f"feature set {set_name!r} of {dataset!r} was made with another spec than run {run.id}'s "
                         f"training set: featurize it with the same spec (aacbatch featurize {set_name} --dataset "
                         f"{dataset} --rebuild)")


def evaluate_retrieval_run(registry: Registry, run_id: str, dataset: str, splits: Sequence[str]) -> dict[str, dict]:
    """Score a retrieval run on ``splits`` of another ``dataset``; record scores and matrices."""
    run = get_run(registry, run_id)
    if catalog.task(run.task).family != "retrieval":
        raise InputError(f"run {run.id} is a {run.task} run: --dataset evaluates retrieval runs "
                         f"({', '.join(catalog.tasks_where(family='retrieval'))}) on another dataset")
    results = {}
    for split in splits:
        arrays = retrieval_similarity(registry, run.id, dataset, split)
        path = _run_dir(registry, run.id) / f"similarity-{dataset}-{split}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **arrays)
        scored = score_retrieval(arrays["similarity"], arrays["relevant"], [str(c) for c in arrays["clip_idx"]])
        results[split] = SplitResult(scored.metrics, artifacts={"similarity": path}, intervals=scored.intervals,
                                     provenance=scored.provenance)
    RunRecorder(registry, run.id, get_dataset(registry, dataset).id).final(results)
    return {split: r.metrics for split, r in results.items()}


def evaluate_caption_run(registry: Registry, run_id: str, dataset: str, splits: Sequence[str]) -> dict[str, dict]:
    """Caption ``splits`` of another ``dataset`` with a caption run; record scores and captions."""
    run = get_run(registry, run_id)
    if catalog.task(run.task).family != "caption":
        raise InputError(f"run {run.id} is a {run.task} run: evaluate caption scores caption runs")
    results = {}
    for split in splits:
        scored = evaluate_ensemble(registry, [run.id], None, split, dataset=dataset)
        results[split] = SplitResult(scored.metrics, scored.reasons, scored.captions, intervals=scored.intervals,
                                     provenance=scored.provenance)
    RunRecorder(registry, run.id, get_dataset(registry, dataset).id).final(results)
    return {split: r.metrics for split, r in results.items()}


def evaluate_system(registry: Registry, name: str, dataset: str, splits: Sequence[str]) -> dict[str, dict]:
    """Score system ``name`` (its members as built) on ``splits`` of ``dataset``; recorded with
    the system, beside the scores it was built with."""
    system = system_by_name(registry, name)
    pairs = members_of(registry, system)
    if not pairs:
        raise InputError(f"system {name!r} has no members: rebuild it with `aacbatch system build {name}`")
    ids, weights = [r for r, _ in pairs], [w for _, w in pairs]
    scores, reasons, artifacts, captions, intervals, provenance = {}, {}, {}, {}, {}, {}
    folder = Path(registry.settings.home) / "systems" / name
    for split in splits:
        if system.kind == "retrieval":
            parts = [similarity_arrays(r, retrieval_similarity(registry, r, dataset, split)) for r in ids]
            arrays = mean_similarity(parts, weights, split)
            folder.mkdir(parents=True, exist_ok=True)
            artifacts[split] = folder / f"similarity-{dataset}-{split}.npz"
            np.savez_compressed(artifacts[split], **arrays)
            scored = score_retrieval(arrays["similarity"], arrays["relevant"], [str(c) for c in arrays["clip_idx"]])
            scores[split], reasons[split] = scored.metrics, {}
            intervals[split], provenance[split] = scored.intervals, scored.provenance
        else:
            scored = evaluate_ensemble(registry, ids, weights, split, dataset=dataset)
            scores[split] = scored.metrics
            reasons[split] = {k: v for k, v in scored.reasons.items() if scored.metrics.get(k) is None}
            captions[split] = scored.captions
            intervals[split], provenance[split] = scored.intervals, scored.provenance
    put_system_scores(registry, system.id, get_dataset(registry, dataset).id, scores, reasons, artifacts, captions,
                      intervals, provenance)
    return scores
