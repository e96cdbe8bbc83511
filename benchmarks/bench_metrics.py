"""Every offline-computable caption metric of 1045 x 5 captions with 1,000 bootstrap resamples each (target <= 12 s).

Offline-computable: PTB tokenisation, BLEU-1..4, ROUGE-L, METEOR, CIDEr-D and Vocab (SPICE,
FENSE and the fluency penalty need user assets). Each round runs in a fresh process, so the
JVM start-ups (tokenizer, METEOR and its paraphrase table) and the tokenizer's empty memo are
included, as a user's first ``aacbatch evaluate caption`` would see them. A round is

    caption_metrics(...)  then  bootstrap_intervals(scores.statistics, resamples=1000)

timed end to end, followed by the same steps one at a time (after clearing the tokenizer memo,
with a fresh METEOR JVM) to show where the time goes; inside ``caption_metrics`` the Python
metrics run while METEOR's JVM scores, so the end-to-end time is below the sum of the steps.
Each round also times the baseline -- ``caption_metrics(metrics=("meteor", "cider_d"))``, what
the evaluation cost before BLEU, ROUGE-L, Vocab and intervals -- in its own fresh process,
interleaved with the full run, and prints the paired overhead (full - baseline), which is much
less sensitive to other load on the machine than either time alone (METEOR's JVM dominates both).
The median round is printed with the min-max over rounds. Captions come from the caption-metric
tests' seeded generator (Zipf-like words, 1-40 words, shared references, punctuation-only ones).
Also prints text→audio + DCASE audio→text on 5225 x 1045 with per-query values and 1,000
resamples (informational).

    .venv/bin/python benchmarks/bench_metrics.py [--rounds 3] [--items 1045] [--refs 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_caption_metrics import random_corpus  # noqa: E402  (the tests' seeded caption generator)

from aacbatch.evaluate import ptb  # noqa: E402
from aacbatch.evaluate.bleu_rouge import Bleu, RougeL  # noqa: E402
from aacbatch.evaluate.captions import BLEU, _tokenize, caption_metrics  # noqa: E402
from aacbatch.evaluate.cider import CiderD  # noqa: E402
from aacbatch.evaluate.meteor import Meteor  # noqa: E402
from aacbatch.evaluate.provenance import caption_provenance  # noqa: E402
from aacbatch.evaluate.retrieval import retrieval_statistics  # noqa: E402
from aacbatch.evaluate.uncertainty import bootstrap_intervals  # noqa: E402
from result import result  # noqa: E402

OFFLINE = (*BLEU, "rouge_l", "meteor", "cider_d", "vocab")
RESAMPLES = 1000


def baseline_round(items: int, refs: int) -> dict[str, float]:
    """Seconds for METEOR + CIDEr-D alone, the evaluation as it was before this metric set."""
    predictions, references = random_corpus(items, seed=1, n_refs=refs)
    with tempfile.TemporaryDirectory() as assets:
        start = time.perf_counter()
        caption_metrics(predictions, references, assets_dir=Path(assets), metrics=("meteor", "cider_d"))
        return {"total": time.perf_counter() - start}


def one_round(items: int, refs: int) -> dict[str, float]:
    """Seconds: the end-to-end run, then each step on its own."""
    predictions, references = random_corpus(items, seed=1, n_refs=refs)
    ids = list(predictions)
    times = {}
    with tempfile.TemporaryDirectory() as assets:
        start = time.perf_counter()
        scores = caption_metrics(predictions, references, assets_dir=Path(assets), metrics=OFFLINE)
        times["caption_metrics"] = time.perf_counter() - start
        bootstrap_intervals(scores.statistics, resamples=RESAMPLES)
        times["total"] = time.perf_counter() - start

        ptb._MEMO.clear()
        steps = {}
        clock = time.perf_counter()

        def step(name: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            steps[name] = now - clock
            clock = now

        cands, tokens, _ = _tokenize(ids, predictions, references)
        step("tokenise (2 JVMs)")
        with Meteor() as meteor:
            meteor.compute_with_stats(cands, tokens)
        step("METEOR (JVM start + paraphrase table + scoring)")
        Bleu().compute(cands, tokens)
        step("BLEU-1..4 (pycocoevalcap)")
        RougeL().compute(cands, tokens)
        step("ROUGE-L (pycocoevalcap)")
        CiderD().compute(cands, tokens)
        step("CIDEr-D")
        len({word for cand in cands for word in cand.split()})
        step("Vocab")
        caption_provenance(OFFLINE, assets_dir=Path(assets))
        step("provenance (hashes memoised after the first run)")
        for metric, statistic in scores.statistics.items():
            bootstrap_intervals({metric: statistic}, resamples=RESAMPLES)
        step(f"bootstrap x{RESAMPLES}, {len(scores.statistics)} metrics one by one")
    times.update({f"  {name}": value for name, value in steps.items()})
    return times


def retrieval_round() -> float:
    rng = np.random.default_rng(0)
    sim = rng.standard_normal((5225, 1045)).astype(np.float32)
    relevant = np.repeat(np.arange(1045), 5)
    start = time.perf_counter()
    bootstrap_intervals(retrieval_statistics(sim, relevant, first_hit=True), resamples=RESAMPLES)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--items", type=int, default=1045)
    parser.add_argument("--refs", type=int, default=5)
    parser.add_argument("--child", choices=("full", "baseline"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps((one_round if args.child == "full" else baseline_round)(args.items, args.refs)))
        return

    def child(kind: str) -> dict[str, float]:  # a fresh process: cold JVMs, empty tokenizer memo
        out = subprocess.run([sys.executable, __file__, "--child", kind, "--items", str(args.items), "--refs",
                              str(args.refs)], capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    rounds, baselines = [], []
    for _ in range(args.rounds):
        baselines.append(child("baseline")["total"])
        rounds.append(child("full"))
    totals = [r["total"] for r in rounds]
    overhead = [full - base for full, base in zip(totals, baselines)]
    median = rounds[int(np.argsort(totals)[len(totals) // 2])]
    print(f"{args.items} x {args.refs} captions, {', '.join(OFFLINE)}, {RESAMPLES} resamples each; "
          f"{args.rounds} fresh-process rounds, median round shown (min-max over rounds)")
    for name in median:
        values = [r[name] for r in rounds]
        print(f"  {name:<62} {median[name]:7.2f} s   ({min(values):.2f}-{max(values):.2f})")
    print(f"  {'baseline: METEOR + CIDEr-D only':<62} {np.median(baselines):7.2f} s   "
          f"({min(baselines):.2f}-{max(baselines):.2f})")
    print(f"  {'overhead of the full set + intervals (paired per round)':<62} {np.median(overhead):7.2f} s   "
          f"({min(overhead):.2f}-{max(overhead):.2f})")
    retrieval_s = min(retrieval_round() for _ in range(3))
    print(f"  retrieval t2a + a2t + a2t_first statistics, 5225 x 1045, x{RESAMPLES} resamples: {retrieval_s:.2f} s (best of 3)")
    result("offline caption metrics + 1000 bootstrap resamples (1045 x 5), s", median["total"], "<=", 12.0)
    result("overhead over METEOR + CIDEr-D alone (1045 x 5), s", float(np.median(overhead)))
    result("retrieval statistics + 1000 bootstrap resamples (5225 x 1045), s", retrieval_s)


if __name__ == "__main__":
    main()
