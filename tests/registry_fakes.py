"""A registry filled with fake runs whose scores are known, for the systems and reports tests.

Retrieval runs on the target dataset (validation mAP@10 / R@10 chosen so every system picks
a known, different set, with one tie broken by run id), distractors the systems must skip
(a bag-of-words run, a failed run, a NULL score, pretraining runs on another dataset), and
captioners on each retrieval encoder. Ids are assigned in creation order, so ties resolve
to the run created first. Each retrieval run has 4 × 2 similarity matrices for val and eval
(captions 0–1 belong to clip 0, captions 2–3 to clip 1): ``A`` and ``B`` each rank half the
captions right and their mean ranks all of them right.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aacbatch.registry.schema import Checkpoint, Dataset, Prediction, Run, Score, utcnow

TARGET, PRETRAIN = "target", "pretrain"
RELEVANT = np.array([0, 0, 1, 1])
A = np.array([[1.0, 0.0], [0.0, 0.6], [0.0, 1.0], [0.6, 0.0]], dtype=np.float32)
B = np.array([[0.0, 0.6], [1.0, 0.0], [0.6, 0.0], [0.0, 1.0]], dtype=np.float32)
SPLIT_INDEX = {"val": (np.arange(0, 4), np.arange(0, 2)), "eval": (np.arange(4, 8), np.arange(2, 4))}

# name: task, tag_loss, val mAP@10, val R@10, eval mAP@10
RETRIEVAL = {
    "clap": ("clap", None, 0.50, 0.70, 0.41),
    "mae": ("clap_tag", "mae", 0.60, 0.65, 0.47),
    "msle": ("clap_tag", "mse_log", 0.55, 0.90, 0.52),  # ties with claip on mAP@10; created first
    "claip": ("claip", None, 0.55, 0.80, 0.44),  # random-weight image inputs
    "claip_tag": ("claip_tag", "mse_log", 0.40, 0.60, 0.30),
}
# name: encoder (a RETRIEVAL name), val CIDEr-D (None: NULL with a reason), eval CIDEr-D
CAPTION = {
    "cap_mae1": ("mae", 0.50, 0.40), "cap_mae2": ("mae", 0.45, 0.38), "cap_mae3": ("mae", 0.40, 0.35),
    "cap_mae4": ("mae", 0.30, 0.20), "cap_msle1": ("msle", 0.60, 0.50), "cap_msle2": ("msle", 0.35, 0.30),
    "cap_clap1": ("clap", 0.55, 0.45), "cap_claip1": ("claip", 0.20, 0.15), "cap_clap_null": ("clap", None, None),
}


@dataclass
class Fakes:
    root: Path
    ids: dict[str, str] = field(default_factory=dict)
    datasets: dict[str, str] = field(default_factory=dict)
    similarity: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)

    def of(self, *names: str) -> list[str]:
        return [self.ids[n] for n in names]


def _id(k: int) -> str:
    return f"{k:08x}-0000-4000-8000-{k:012x}"


def add_run(session, fakes: Fakes, name: str, task: str, dataset: str, *, config: dict | None = None,
            status: str = "finished", random_weights: bool = False, parent: str | None = None) -> str:
    run_id = fakes.ids[name] = _id(len(fakes.ids) + 1)
    session.add(Run(id=run_id, task=task, dataset_id=fakes.datasets[dataset], parent_run_id=parent,
                    config_json=json.dumps({"dataset": dataset, **(config or {})}), status=status,
                    random_weights=random_weights, started_at=utcnow(),
                    finished_at=utcnow() if status == "finished" else None))
    ckpt = fakes.root / "runs" / run_id / "best.pt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    ckpt.write_bytes(b"fake checkpoint")
    session.add(Checkpoint(run_id=run_id, epoch=1, step=1, path=str(ckpt), is_best=True))
    return run_id


def score(session, run_id: str, split: str, metrics: dict[str, float | None], epoch: int | None = None,
          reason: str = "asset missing") -> None:
    for metric, value in metrics.items():
        session.add(Score(run_id=run_id, split=split, metric=metric, value=value, epoch=epoch,
                          reason=reason if value is None else None))


def write_similarity(session, fakes: Fakes, run_id: str, split: str, sim: np.ndarray,
                     clip_idx: np.ndarray | None = None) -> Path:
    captions, clips = SPLIT_INDEX[split]
    path = fakes.root / "runs" / run_id / f"similarity-{split}.npz"
    np.savez_compressed(path, similarity=sim.astype(np.float32), caption_idx=captions,
                        clip_idx=clips if clip_idx is None else clip_idx, relevant=RELEVANT)
    session.add(Prediction(run_id=run_id, split=split, kind="similarity", artifact_path=str(path)))
    return path


def fill(registry, root: Path) -> Fakes:
    fakes = Fakes(root)
    rng = np.random.default_rng(0)
    with registry.transaction() as session:
        for name in (PRETRAIN, TARGET):
            session.add(Dataset(id=name + "-id", name=name, format="folder", source_path="/", fingerprint="f",
                                n_clips=4, n_captions=8))
            fakes.datasets[name] = name + "-id"
        pretrained = add_run(session, fakes, "pre_clap", "clap", PRETRAIN)
        score(session, pretrained, "val", {"t2a/mAP@10": 0.95, "t2a/R@10": 0.99})
        for split in ("val", "eval"):
            write_similarity(session, fakes, pretrained, split, rng.random((4, 2)))
        for name, (task, loss, val_map, val_r10, eval_map) in RETRIEVAL.items():
            config = {"tag_loss": loss or "mae"}  # non-TAG runs carry the field too, unused
            run_id = add_run(session, fakes, name, task, TARGET, config=config, random_weights=name == "claip",
                             parent=pretrained)
            score(session, run_id, "val", {"t2a/mAP@10": val_map, "t2a/R@10": val_r10, "t2a/R@1": val_map / 2})
            score(session, run_id, "eval", {"t2a/R@1": eval_map / 2, "t2a/R@5": eval_map + 0.2,
                                            "t2a/R@10": eval_map + 0.3, "t2a/mAP@10": eval_map})
            for split in ("val", "eval"):
                sim = {"clap": A, "mae": B}.get(name, rng.random((4, 2)))
                fakes.similarity[(name, split)] = sim.astype(np.float32)
                write_similarity(session, fakes, run_id, split, sim)
        bow = add_run(session, fakes, "bow", "bow", TARGET)
        score(session, bow, "val", {"t2a/mAP@10": 0.99})
        score(session, bow, "eval", {"t2a/R@1": 0.11, "t2a/R@5": 0.33, "t2a/R@10": 0.55, "t2a/mAP@10": 0.22})
        failed = add_run(session, fakes, "failed", "clap", TARGET, status="failed", parent=pretrained)
        score(session, failed, "val", {"t2a/mAP@10": 0.98})
        nulled = add_run(session, fakes, "nulled", "clap", TARGET, parent=pretrained)
        score(session, nulled, "val", {"t2a/mAP@10": None})
        frequent = add_run(session, fakes, "frequent", "frequent_caption", TARGET)
        score(session, frequent, "eval", {"meteor": None, "cider_d": 0.05}, reason="METEOR needs Java")
        for name, (encoder, val_cider, eval_cider) in CAPTION.items():
            run_id = add_run(session, fakes, name, "caption", TARGET, parent=pretrained,
                             config={"encoder_run": fakes.ids[encoder], "features": f"encoded-{encoder}",
                                     "select_metric": "cider_d"})
            score(session, run_id, "val", {"cider_d": val_cider, "spice": None})
            score(session, run_id, "eval", {"cider_d": eval_cider, "spice": None})
    return fakes
