"""Every device path of aacbatch on a real GPU, with a throughput table (``make bench-gpu``).

The same library calls a user's runs make, on a small generated corpus in a throwaway home:
SynthCaps clips of 10 s → ingest → log-mels (CPU) → the paper-size CNN14 tagger → featurize
``tags``, ``tokens``, ``images`` (Stable Diffusion stand-in in fp16) → CLAP-TAG with a fine-tuned
BERT-family text encoder (all-MiniLM-L6-v2) under each amp mode → CLAIP-TAG → featurize
``encoded`` → a captioner → captions of the eval split → an index of the audio folder and a
search; then NCCL collectives on this rank's GPU. Training throughput and the share of time
spent waiting for data are the loop's own per-epoch records (split ``train`` in ``scores``),
read from the last epoch, after the warm-up epoch.

Without a GPU it says so and exits 0 (nothing is measured). ``--device cpu --tiny`` runs every
path at toy size on the CPU, to check the script itself.

    python benchmarks/gpu_check.py                 # on a GPU machine
    python benchmarks/gpu_check.py --clips 2048    # a longer, steadier measurement
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aacbatch.captioning import caption_split  # noqa: E402
from aacbatch.config import Settings  # noqa: E402
from aacbatch.data.ingest import ingest  # noqa: E402
from aacbatch.data.splits import resplit  # noqa: E402
from aacbatch.data.synthcaps import generate  # noqa: E402
from aacbatch.device import use  # noqa: E402
from aacbatch.featurize.job import featurize  # noqa: E402
from aacbatch.registry.queries import run_sql  # noqa: E402
from aacbatch.registry.store import Registry  # noqa: E402
from aacbatch.search.index import build_index  # noqa: E402
from aacbatch.search.query import Searcher  # noqa: E402
from aacbatch.train.config import usable_cpus  # noqa: E402
from aacbatch.train.run import train_task  # noqa: E402
from result import result  # noqa: E402

QUIET = lambda _: None  # noqa: E731
ROWS: list[tuple[str, float, str]] = []


def stage(name: str, fn, rate=None):
    """Run ``fn``, keep its wall time and (``rate(out, seconds)``) its throughput text."""
    started = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - started
    ROWS.append((name, seconds, rate(out, seconds) if rate else ""))
    print(f"  {name}: {seconds:.1f} s {ROWS[-1][2]}", flush=True)
    return out


def epoch_meter(registry: Registry, run_id: str) -> dict[str, float]:
    """The last epoch's throughput records of a run (the loop's ``train`` split rows)."""
    _, rows = run_sql(registry, "SELECT metric, value FROM scores WHERE run_id = :r AND split = 'train' AND epoch = "
                      "(SELECT MAX(epoch) FROM scores WHERE run_id = :r AND split = 'train')", {"r": run_id})
    return dict(rows)


def trained(registry, run_id, seconds) -> str:
    m = epoch_meter(registry, run_id)
    return f"{m['examples_per_s']:,.0f} examples/s, data wait {m['data_wait']:.1%}, padded {m['padded']:.1%}"


def nccl_check(device: torch.device) -> str:
    """One-rank NCCL: all_gather and all_reduce of tensors on this GPU, as DDP's helpers place them."""
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    dist.init_process_group("nccl", rank=0, world_size=1, device_id=device)
    try:
        local = torch.arange(6, dtype=torch.float32, device=device)
        parts = [torch.zeros_like(local)]
        dist.all_gather(parts, local)
        total = torch.tensor([3.0], dtype=torch.float64, device=device)
        dist.all_reduce(total)
        ok = torch.equal(parts[0], local) and float(total) == 3.0
        return "all_gather + all_reduce on the GPU: " + ("ok" if ok else "WRONG VALUES")
    finally:
        dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--clips", type=int, default=512)
    parser.add_argument("--tiny", action="store_true", help="toy sizes (to check the script on a CPU)")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU on this machine — nothing measured; GPU figures stay unmeasured")
        return
    device = use(args.device)
    tiny = args.tiny
    clips, seconds = (24, (2.0, 2.0)) if tiny else (args.clips, (10.0, 10.0))
    cnn14 = "cnn14-tiny" if tiny else "cnn14"
    workers = f"loader_workers={min(2 if tiny else 6, usable_cpus() - 1)}"
    amp_modes = ("off", "bf16", "fp16") if device.type == "cuda" else ("off", "bf16")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"gpu_check on {device} ({name}), torch {torch.__version__}, {clips} clips of {seconds[0]:g} s, {cnn14}")

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        registry = Registry(Settings.resolve(home=home))
        folder = home / "synth"
        stage("synthesise clips (CPU)", lambda: generate(folder, clips, seed=0, duration=seconds))
        ingest(registry, "clotho", folder, name="g")
        resplit(registry, "g", ratio=0.8)
        stage("featurize mel (CPU)", lambda: featurize(registry, "mel", "g", workers=max(1, usable_cpus() // 2)))
        epochs = ("epochs=2", "eval_splits=['val']")
        tagger = stage(f"tagger {cnn14}, bf16", lambda: train_task(
            registry, "tagger", dataset="g", sets=epochs + (f"model='{cnn14}'", "batch_size=64", "amp='bf16'", workers),
            log=QUIET), lambda out, s: trained(registry, out.run_id, s))
        stage("featurize tags (paper-size teacher)", lambda: featurize(registry, "tags", "g",
                                                                        overrides={"teacher": tagger.run_id}),
              lambda out, s: f"{clips / s:,.0f} clips/s (whole job)")
        stage("featurize tokens", lambda: featurize(registry, "tokens", "g"))
        stage("featurize images (SD stand-in; fp16 on GPUs)", lambda: featurize(registry, "images", "g"),
              lambda out, s: f"{5 * clips / s:,.1f} captions/s")
        retrieval = {}
        for amp in ("off", "bf16", "fp16"):
            if amp not in amp_modes:
                ROWS.append((f"clap_tag amp={amp}", float("nan"), "n/a (fp16 needs a GPU)"))
                continue
            sets = epochs + (f"audio_init='{tagger.run_id}'", "batch_size=128", f"amp='{amp}'", workers, "bucket=true")
            retrieval[amp] = stage(f"clap_tag amp={amp}, fine-tuned text encoder", lambda sets=sets: train_task(
                registry, "clap_tag", dataset="g", sets=sets, log=QUIET), lambda out, s: trained(registry, out.run_id, s))
            result(f"gpu_check clap_tag {cnn14} amp={amp}: examples/s", epoch_meter(registry, retrieval[amp].run_id)["examples_per_s"],
                   ">=" if amp == "bf16" and not tiny else None, 500 if amp == "bf16" and not tiny else None)
        stage("claip_tag amp=bf16", lambda: train_task(
            registry, "claip_tag", dataset="g", sets=epochs + (f"audio_init='{tagger.run_id}'", "amp='bf16'", workers),
            log=QUIET), lambda out, s: trained(registry, out.run_id, s))
        encoder = retrieval["bf16"].run_id
        encoded = stage("featurize encoded", lambda: featurize(registry, "encoded", "g", overrides={"run": encoder}))
        captioner = stage("caption training, bf16", lambda: train_task(
            registry, "caption", dataset="g", sets=("epochs=2", "eval_splits=['val']", f"features='{encoded.name}'",
                                                    "amp='bf16'", workers), log=QUIET),
            lambda out, s: trained(registry, out.run_id, s))
        stage("caption the val split (beam 3)", lambda: caption_split(registry, [captioner.run_id], "val"),
              lambda out, s: f"{len(out.captions) / s:,.1f} clips/s")
        stage("index the audio folder", lambda: build_index(registry, folder, run=encoder, name="g-audio"),
              lambda out, s: f"{clips / s:,.1f} files/s")
        stage("search", lambda: Searcher.open(registry, "g-audio").search("a dog barks", k=5))
        if device.type == "cuda":
            started = time.perf_counter()
            ROWS.append(("NCCL (one rank)", time.perf_counter() - started, nccl_check(device)))
            print(f"  {ROWS[-1][0]}: {ROWS[-1][2]}")
        if device.type == "cuda":
            ROWS.append(("peak GPU memory", float("nan"), f"{torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB"))

    print("\n| stage | seconds | throughput |\n|---|---:|---|")
    for stage_name, secs, rate in ROWS:
        print(f"| {stage_name} | {'' if secs != secs else f'{secs:.1f}'} | {rate} |")
    print("\n" + json.dumps({"device": str(device), "name": name, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
