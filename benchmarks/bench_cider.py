"""CIDEr-D: aacbatch's vectorised implementation vs pycocoevalcap's ``Cider``, same process, same tokens.

A Clotho-evaluation-sized corpus (1045 candidates x 5 references) from the caption-metric
tests' seeded generator is PTB-tokenised once (not timed); each implementation then scores it
``--repeats`` times and the best time counts, which is the least disturbed by other load.
Prints both times, the speed ratio (target >= 5x) and the largest absolute differences.

    .venv/bin/python benchmarks/bench_cider.py [--items 1045] [--refs 5] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from pycocoevalcap.cider.cider import Cider

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_caption_metrics import random_corpus  # noqa: E402  (the tests' seeded caption generator)

from aacbatch.evaluate.cider import CiderD  # noqa: E402
from aacbatch.evaluate.ptb import tokenize  # noqa: E402


from result import result  # noqa: E402


def best_time(fn, repeats: int):
    """(fastest wall time over ``repeats`` calls, result of the last call)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1045)
    parser.add_argument("--refs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    predictions, references = random_corpus(args.items, seed=1, n_refs=args.refs)
    ids = list(predictions)
    cands, flat = tokenize([predictions[i] for i in ids], [r for i in ids for r in references[i]])
    refs = [flat[k * args.refs:(k + 1) * args.refs] for k in range(len(ids))]
    gts = {i: r for i, r in zip(ids, refs)}
    res = {i: [c] for i, c in zip(ids, cands)}

    ours_s, (ours, ours_items) = best_time(lambda: CiderD().compute(cands, refs), args.repeats)
    coco_s, (coco, coco_items) = best_time(lambda: Cider().compute_score(gts, res), args.repeats)
    print(f"CIDEr-D on {args.items} candidates x {args.refs} references (best of {args.repeats})")
    print(f"  pycocoevalcap Cider : {coco_s * 1000:8.1f} ms   corpus {coco:.6f}")
    print(f"  aacbatch CiderD     : {ours_s * 1000:8.1f} ms   corpus {ours:.6f}")
    print(f"  speed-up            : {coco_s / ours_s:8.1f} x   (target >= 5 x)")
    print(f"  max |diff| corpus {abs(ours - coco):.2e}, per item {np.abs(ours_items - coco_items).max():.2e}")
    result("CIDEr-D speed-up vs pycocoevalcap (1045 x 5)", coco_s / ours_s, ">=", 5.0)


if __name__ == "__main__":
    main()
