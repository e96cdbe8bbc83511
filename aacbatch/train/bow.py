"""``--task bow``: the bag-of-words retrieval baseline every trained model must beat.

Audio is summarised by the mean and standard deviation of each cached log-mel band (128
numbers); a ridge regression maps that summary to the bag-of-words vector of the clip's
captions (training split vocabulary, lower-cased words, stop words dropped); a text query
ranks clips by cosine similarity between its bag of words and each clip's predicted one.
Cheap (no torch), honest (learned from the training split only), and far from trivial on
SynthCaps because loudness, order and count words are unpredictable from band statistics.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aacbatch.data.items import load_items
from aacbatch.evaluate.retrieval import retrieval_metrics
from aacbatch.evaluate.scored import score_retrieval
from aacbatch.featurize.sets import cached_set
from aacbatch.registry.runs import RunRecorder, SplitResult
from aacbatch.train.task import ClosedFormTask

STOP = frozenset("a an the and or of in on at to is are be being with while as by from for it its this that there "
                 "can heard you hear sound sounds recording".split())
WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class BowConfig:
    mel: str = "mel"
    ridge: float = 10.0
    min_count: int = 2
    seed: int = 0
    train_split: str = "train"
    val_split: str = "val"
    eval_splits: tuple[str, ...] = ("val", "eval")


def words(text: str) -> list[str]:
    return [w for w in WORD.findall(text.lower()) if w not in STOP]


def audio_summary(mels: list[np.ndarray]) -> np.ndarray:
    """(T_i, 64) log-mels → (N, 128): per-band mean and standard deviation."""
    return np.stack([np.concatenate([m.mean(0), m.std(0)]) for m in (x.astype(np.float32) for x in mels)])


class BowBaseline:
    def __init__(self, cfg: BowConfig, vocab: list[str], mean: np.ndarray, std: np.ndarray, weights: np.ndarray):
        self.cfg, self.vocab, self.mean, self.std, self.weights = cfg, vocab, mean, std, weights
        self.index = {w: k for k, w in enumerate(vocab)}

    def text_vectors(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(self.vocab)), dtype=np.float64)
        for i, text in enumerate(texts):
            for w in words(text):
                if w in self.index:
                    out[i, self.index[w]] = 1.0
        return out

    def audio_vectors(self, summaries: np.ndarray) -> np.ndarray:
        x = (summaries - self.mean) / self.std
        return np.hstack([x, np.ones((len(x), 1))]) @ self.weights

    @classmethod
    def fit(cls, cfg: BowConfig, summaries: np.ndarray, captions: list[list[str]]) -> "BowBaseline":
        counts = Counter(w for caps in captions for c in caps for w in set(words(c)))
        vocab = sorted(w for w, n in counts.items() if n >= cfg.min_count)
        mean, std = summaries.mean(0), summaries.std(0) + 1e-6
        model = cls(cfg, vocab, mean, std, np.zeros((summaries.shape[1] + 1, len(vocab))))
        targets = np.stack([model.text_vectors(caps).mean(0) for caps in captions])
        x = np.hstack([(summaries - mean) / std, np.ones((len(summaries), 1))])
        reg = cfg.ridge * np.eye(x.shape[1])
        reg[-1, -1] = 0.0  # do not shrink the bias
        model.weights = np.linalg.solve(x.T @ x + reg, x.T @ targets)
        return model

    def similarity(self, texts: list[str], summaries: np.ndarray) -> np.ndarray:
        def unit(v):
            return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        return unit(self.text_vectors(texts)) @ unit(self.audio_vectors(summaries)).T


def split_data(registry, dataset: str, split: str, mel_set):
    """Summaries of a split's clips and, per clip, its captions; plus the query list."""
    items = load_items(registry, dataset, split)
    mels = mel_set.store.reader("mel")[mel_set.store.rows([c.idx for c in items.clips])]
    position = {c.idx: k for k, c in enumerate(items.clips)}
    captions: list[list[str]] = [[] for _ in items.clips]
    queries, relevant = [], []
    for cap in items.captions:
        captions[position[cap.clip_idx]].append(cap.text)
        queries.append(cap.text)
        relevant.append(position[cap.clip_idx])
    return audio_summary(mels), captions, queries, np.array(relevant)


def evaluate_bow(model: BowBaseline, registry, dataset, split, mel_set) -> dict[str, float]:
    summaries, _, queries, relevant = split_data(registry, dataset, split, mel_set)
    return {f"t2a/{k}": v for k, v in retrieval_metrics(model.similarity(queries, summaries), relevant).items()}


def score_bow(model: BowBaseline, registry, dataset, split, mel_set) -> SplitResult:
    """Final scores of a split in both directions, with bootstrap intervals and provenance, as
    every retrieval run's (:func:`aacbatch.evaluate.scored.score_retrieval`)."""
    summaries, _, queries, relevant = split_data(registry, dataset, split, mel_set)
    clip_ids = [str(c.id) for c in load_items(registry, dataset, split).clips]
    scored = score_retrieval(model.similarity(queries, summaries), relevant, clip_ids)
    return SplitResult(scored.metrics, intervals=scored.intervals, provenance=scored.provenance)


class BowTask(ClosedFormTask):
    """Fits :class:`BowBaseline` on the training split's cached log-mels and captions."""

    Config = BowConfig

    def __init__(self, registry, corpus, info, cfg: BowConfig):
        super().__init__(registry, corpus, info, cfg)
        dataset = self.dataset
        self.mel_set = cached_set(registry, dataset, cfg.mel)

    def inputs(self):
        return [self.mel_set]

    def fit(self, recorder: RunRecorder, run_dir: Path) -> dict[str, dict]:
        """Fit on the training split, score every split, save the weights as the run's checkpoint."""
        cfg, registry, dataset, mel_set = self.cfg, self.registry, self.dataset, self.mel_set
        summaries, captions, _, _ = split_data(registry, dataset, cfg.train_split, mel_set)
        model = BowBaseline.fit(cfg, summaries, captions)
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / "best.npz"
        np.savez(path, vocab=np.array(model.vocab), mean=model.mean, std=model.std, weights=model.weights)
        recorder.checkpoint(path, epoch=1, step=0, is_best=True)
        recorder.scores(cfg.val_split, evaluate_bow(model, registry, dataset, cfg.val_split, mel_set), epoch=1)
        results = {split: score_bow(model, registry, dataset, split, mel_set) for split in cfg.eval_splits}
        recorder.final(results)
        recorder.status("finished")
        return {split: result.metrics for split, result in results.items()}
