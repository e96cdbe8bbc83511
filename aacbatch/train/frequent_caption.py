"""``--task frequent_caption``: the "most frequent caption" baseline every captioner must beat.

It predicts, for every clip, the training caption that occurs most often (after lower-casing
and PTB tokenisation, ties broken alphabetically), ignoring the audio entirely. On a corpus
of templated captions that is a real bar — it scores what a captioner earns from the
language prior alone — so CIDEr-D above it means the audio is being used.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from aacbatch.data.items import load_items
from aacbatch.evaluate.captions import CaptionEvaluation
from aacbatch.evaluate.ptb import tokenize
from aacbatch.registry.runs import RunRecorder, SplitResult
from aacbatch.train.task import ClosedFormTask


@dataclass(frozen=True)
class FrequentCaptionConfig:
    seed: int = 0  # unused (nothing is random); kept so every run records a seed
    train_split: str = "train"
    eval_splits: tuple[str, ...] = ("val", "eval")


def most_frequent_caption(texts: list[str]) -> str:
    counts = Counter(tokenize(texts)[0])
    return min(counts, key=lambda caption: (-counts[caption], caption))


class FrequentCaptionTask(ClosedFormTask):
    Config = FrequentCaptionConfig

    def fit(self, recorder: RunRecorder, run_dir: Path) -> dict[str, dict]:
        """Pick the caption on the training split, score it on every split, store it as the checkpoint."""
        registry, dataset, cfg = self.registry, self.dataset, self.cfg
        caption = most_frequent_caption([c.text for c in load_items(registry, dataset, cfg.train_split).captions])
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / "best.json"
        path.write_text(json.dumps({"caption": caption}))
        recorder.checkpoint(path, epoch=1, step=0, is_best=True)
        results = {}
        for split in cfg.eval_splits:
            items = load_items(registry, dataset, split)
            ids = {c.idx: c.id for c in items.clips}
            references = {ids[idx]: texts for idx, texts in items.references().items()}
            scored = CaptionEvaluation.score({k: caption for k in references}, references,
                                             registry.settings.home / "assets")
            results[split] = SplitResult(scored.metrics, scored.reasons, scored.captions, intervals=scored.intervals,
                                         provenance=scored.provenance)
        recorder.final(results)
        recorder.status("finished")
        return {split: result.metrics for split, result in results.items()}
