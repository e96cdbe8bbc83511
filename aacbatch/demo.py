"""``aacbatch demo``: the whole pipeline on generated SynthCaps data.

Stages: synthesise → plant copies of eval clips in the pretraining set, find them by
acoustic audit and exclude them → ingest → re-split → log-mels → teacher tagger → tags, tokens, text
embeddings, SD/CLIP images → five retrieval variants (pretrain on a mixture of the pretraining
set and the target set's training split → finetune on the target) → bag-of-words
baseline → encoded frames of four encoders → captioners (pretrain on the mixture → finetune, three seeds on
each CLAP-TAG encoder) → most-frequent-caption baseline → the eight systems → Table 1, Table 2
and plots. Every stage is idempotent — generation is skipped when the folder already holds the
same recipe, ingest/split/featurize are no-ops on unchanged inputs, training reuses a finished
run with the same config and inputs, and an unchanged system is not rebuilt — so a second run
only re-prints. The recipes it trains with live in ``aacbatch/recipes``.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from aacbatch import catalog
from aacbatch.audit.datasets import audit_datasets
from aacbatch.audit.planted import plant_into_corpus
from aacbatch.config import Settings
from aacbatch.data.corpus import define_mixture
from aacbatch.data.ingest import ingest
from aacbatch.data.splits import resplit
from aacbatch.data.synthcaps import generate
from aacbatch.device import current
from aacbatch.errors import InputError
from aacbatch.featurize.job import featurize
from aacbatch.formatting import render
from aacbatch.registry.queries import named_query, run_sql
from aacbatch.registry.store import Registry
from aacbatch.reports import plot_report, render_report, run_report
from aacbatch.resources import resource_dir
from aacbatch.systems import build_system
from aacbatch.train.config import usable_cpus
from aacbatch.train.run import train_task
from aacbatch.typed import build, read_toml

PRETRAIN, TARGET = "synthcaps-pretrain", "synthcaps"
MIXTURE = "demo-pretrain"  # pretraining corpus: the pretraining set + the target set's training split
PLANTED = 4  # re-encoded crops of target eval clips planted in the pretraining folder
SYSTEMS = tuple(f"{kind}_s{n}" for kind in ("retrieval", "caption") for n in (1, 2, 3, 4))


@dataclass(frozen=True)
class DemoModel:
    """One retrieval model of the demo plan (``aacbatch/recipes/demo.toml``)."""

    task: str
    sets: tuple[str, ...] = ()  # extra --set pairs of its pretrain and finetune runs
    captioner_seeds: int = 0  # captioners fine-tuned on its frozen encoder

    def __post_init__(self):
        catalog.task(self.task)
        if self.captioner_seeds < 0:
            raise ValueError(f"captioner_seeds must be >= 0, got {self.captioner_seeds}")


def demo_plan() -> list[DemoModel]:
    path = resource_dir("recipes") / "demo.toml"
    entries = read_toml(path, "demo plan").get("retrieval", [])
    return [build(DemoModel, [(f"{path} retrieval #{k + 1}", entry)]) for k, entry in enumerate(entries)]


def _one(**facts) -> str:
    """The one catalog task with these facts (the demo trains each role once)."""
    (name,) = catalog.tasks_where(**facts)
    return name


@dataclass(frozen=True)
class DemoScale:
    """How much data, and what the recipes change at this scale: ``tagger`` and ``every`` are
    ``--set`` pairs for the teacher and for every epoch-trained run."""

    target_clips: int
    pretrain_clips: int
    duration: tuple[float, float]
    tagger: tuple[str, ...] = ()
    every: tuple[str, ...] = ()
    needs_gpu: bool = False


SCALES = {
    "tiny": DemoScale(target_clips=300, pretrain_clips=600, duration=(2.0, 3.0)),
    "small": DemoScale(target_clips=600, pretrain_clips=2400, duration=(3.0, 6.0)),
    # Ten-second clips and the paper-size CNN14 (80 M parameters, PANNs' dropout) on one GPU:
    # every stage as the paper runs it, in bf16 with batches read by worker processes.
    "gpu": DemoScale(target_clips=1000, pretrain_clips=3000, duration=(10.0, 10.0),
                     tagger=("model='cnn14'", "block_dropout=0.2", "pooled_dropout=0.5", "batch_size=64", "lr=1e-3"),
                     every=("amp='bf16'", f"loader_workers={min(4, usable_cpus())}"), needs_gpu=True),
}


def _synth_once(out_dir: Path, clips: int, seed: int, profile: str, scale: DemoScale, progress) -> None:
    """Generate unless ``out_dir`` already holds exactly this recipe."""
    stamp = out_dir / "synthcaps.json"
    if stamp.is_file():
        meta = json.loads(stamp.read_text())
        if (meta.get("n_clips"), meta.get("seed"), meta.get("profile"), tuple(meta.get("duration", ()))) == (
                clips, seed, profile, scale.duration):
            return
    bar = progress(clips, f"synth {out_dir.name}")
    generate(out_dir, clips, seed=seed, profile=profile, duration=scale.duration,
             progress=lambda done, total: bar.update(done - bar.n))
    bar.close()


def run_demo(settings: Settings, *, scale: str = "tiny", echo: Callable[[str], None] = print,
             progress: Callable | None = None) -> None:
    if progress is None:
        progress = lambda total, desc: tqdm(total=total, desc=desc, disable=True)  # noqa: E731
    recipe = SCALES[scale]
    device = current()  # checked before anything is generated: a missing GPU fails at once
    if recipe.needs_gpu and device.type != "cuda":
        raise InputError(f"demo --scale {scale} trains the paper-size CNN14 and needs a CUDA GPU (this process runs on "
                         f"{device}): use --scale tiny on CPUs")
    registry = Registry(settings)
    data = settings.home / "data"

    echo("== data: SynthCaps (pretraining stand-in + Clotho-like target) ==")
    for name, (clips, seed, profile) in {PRETRAIN: (recipe.pretrain_clips, 1, "pretrain"),
                                         TARGET: (recipe.target_clips, 0, "target")}.items():
        _synth_once(data / name, clips, seed, profile, recipe, progress)
    _clean_pretraining(registry, data, echo, progress)
    for name in (PRETRAIN, TARGET):
        result = ingest(registry, "clotho", data / name, name=name, exclude=_excluded(data, name),
                        progress=lambda n, name=name: progress(n, f"check {name}"))
        split = resplit(registry, name, sources=("development", "validation"), ratio=0.9, seed=0)
        counts = " ".join(f"{k}={v}" for k, v in sorted(split.counts.items()))
        dropped = f", {sum(result.dropped.values())} excluded" if result.dropped else ""
        echo(f"{name}: {result.n_clips} clips, {result.n_captions} captions ({result.status}{dropped}); splits {counts}")

    echo("\n== featurize: log-mels ==")
    for name in (PRETRAIN, TARGET):
        _show(echo, featurize(registry, "mel", name, progress=progress))

    echo("\n== teacher tagger (stands in for AudioSet-pretrained PANNs CNN14) ==")
    plan = demo_plan()
    tagger = train_task(registry, _one(teacher=True), dataset=PRETRAIN, config="demo-tagger", reuse=True, log=echo,
                        sets=recipe.tagger + recipe.every)
    echo(f"tagger run {tagger.run_id}: val mAP {tagger.final['val']['mAP']:.3f}")

    echo("\n== featurize: teacher tag scores, caption tokens, locked-text embeddings, SD/CLIP images ==")
    for name in (PRETRAIN, TARGET):
        _show(echo, featurize(registry, "tags", name, overrides={"teacher": tagger.run_id}, progress=progress))
        for spec in ("tokens", "text_emb", "images"):
            _show(echo, featurize(registry, spec, name, progress=progress))

    status, members = define_mixture(registry, MIXTURE, f"{PRETRAIN},{TARGET}")
    echo(f"\nmixture {MIXTURE}: {status} ({' + '.join(m.dataset for m in members)}; validated on {PRETRAIN})")
    echo("\n== retrieval: pretrain on the mixture → finetune on SynthCaps, five variants ==")
    finetuned = []
    for model in plan:
        sets = (f"audio_init='{tagger.run_id}'", *model.sets, *recipe.every)
        pre = train_task(registry, model.task, dataset=MIXTURE, config="demo-retrieval-pretrain", sets=sets,
                         reuse=True, log=echo)
        fine = train_task(registry, model.task, dataset=TARGET, config="demo-retrieval-finetune", sets=sets,
                          init_from=pre.run_id, reuse=True, log=echo)
        finetuned.append(fine.run_id)

    echo("\n== baseline: bag of words on the target set ==")
    bow = train_task(registry, _one(family="baseline", output="retrieval"), dataset=TARGET, reuse=True, log=echo)

    echo("\n== captioning: frames of each frozen retrieval encoder → pretrain → finetune captioners ==")
    captioner = _one(family="caption")
    for model, encoder_run in zip(plan, finetuned):
        if not model.captioner_seeds:
            continue
        for name in (PRETRAIN, TARGET):
            encoded = featurize(registry, "encoded", name, overrides={"run": encoder_run}, progress=progress)
            _show(echo, encoded)
        features = f"features='{encoded.name}'"
        pre = train_task(registry, captioner, dataset=MIXTURE, config="demo-caption-pretrain", reuse=True, log=echo,
                         sets=(features, *recipe.every))
        for seed in range(model.captioner_seeds):
            train_task(registry, captioner, dataset=TARGET, config="demo-caption-finetune", reuse=True, log=echo,
                       sets=(features, f"vocab_from=['{PRETRAIN}']", *recipe.every), seed=seed, init_from=pre.run_id)
    train_task(registry, _one(family="baseline", output="caption"), dataset=TARGET, reuse=True, log=echo)

    echo("\nText→audio retrieval on the target set's eval split, every finetuned model (from the registry):")
    columns, rows = run_sql(registry, named_query("eval_retrieval").read_text(), {"runs": ",".join(finetuned + [bow.run_id])},
                            source="sql/queries/eval_retrieval.sql")
    echo(render(columns, rows, "table"))

    echo("\n== systems: members chosen by SQL on the validation split (sql/systems/*.sql), ensembled ==")
    for name in SYSTEMS:
        result = build_system(registry, name)  # members chosen on val; the ensemble scored on val and eval
        members = ", ".join(m.run_id[:8] for m in result.members)
        warned = f" — {'; '.join(result.warnings)}" if result.warnings else ""
        echo(f"{name}: {len(result.members)} member(s) [{members}] ({result.status}){warned}")
    plots = settings.home / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    for number, name in ((1, "table1"), (2, "table2")):
        report = run_report(registry, name, with_paper=True)
        echo(f"\nTable {number} ({'retrieval' if number == 1 else 'captioning'}, eval split of {TARGET}; "
             f"report {name}; [95 % bootstrap interval over clips]):")
        echo(render_report(report, "table", ci=True))
        plot_report(report, plots / f"{name}.png")
    plot_report(run_report(registry, "curves", {"dataset": TARGET}), plots / "curves.png")

    columns, rows = run_sql(registry, named_query("datasets").read_text(), source="sql/queries/datasets.sql")
    echo("\nDatasets (aacbatch sql --query datasets):")
    echo(render(columns, rows, "table"))
    echo(f"\nregistry: {settings.db_url}\ndata:     {data}\ncache:    {settings.cache_dir}\nruns:     {settings.home / 'runs'}"
         f"\nplots:    {plots}")
    echo(f"\nbrowse it: aacbatch --home {shlex.quote(str(settings.home))} serve --registry-only")


def _excluded(data: Path, name: str) -> tuple[Path, ...]:
    listing = data / f"{name}.excluded.txt"
    return (listing,) if name == PRETRAIN and listing.is_file() else ()


def _clean_pretraining(registry: Registry, data: Path, echo, progress) -> None:
    """Plant re-encoded crops of a few target eval clips in the pretraining folder (as a
    scraped corpus holds them), find them with an acoustic audit of the raw pretraining set
    against the target, and write the clips found as the exclusion list that ingest of the
    pretraining set then applies."""
    echo("\n== clean training data: planted copies of eval clips, found by audit, excluded ==")
    planted = plant_into_corpus(data / TARGET, data / PRETRAIN, PLANTED)
    raw = f"{PRETRAIN}-raw"
    for name in (TARGET, raw):
        ingest(registry, "clotho", data / (PRETRAIN if name == raw else name), name=name,
               progress=lambda n, name=name: progress(n, f"check {name}"))
        featurize(registry, "mel", name, progress=progress)
    result = audit_datasets(registry, (TARGET, raw), pairs="across")
    found = sorted({m.clip_b if m.dataset_b == raw else m.clip_a for m in result.matches})
    for m in result.matches:
        echo(f"  {m.dataset_a}/{m.clip_a} @ {m.start_a:.2f} s = {m.dataset_b}/{m.clip_b} @ {m.start_b:.2f} s "
             f"({m.duration:.2f} s, score {m.score:.3f})")
    echo(f"audit {result.audit_id[:8]}: {len(result.matches)} match(es) among {result.n_clips} clips; "
         f"{len(set(found) & set(planted))} of {len(planted)} planted copies found, "
         f"{len(set(found) - set(planted))} other clip(s)")
    listing = data / f"{PRETRAIN}.excluded.txt"
    listing.write_text("".join(f"{name}\n" for name in found), encoding="utf-8") if found else listing.unlink(missing_ok=True)


def _show(echo, result) -> None:
    note = " [random weights]" if result.random_weights else ""
    echo(f"{result.name} [{result.url.split('/')[-2]}]: {result.status}, {result.n_items} items, "
         f"{result.computed_blocks} blocks computed{note}")
