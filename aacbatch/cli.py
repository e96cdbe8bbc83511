"""The ``aacbatch`` command line: a thin click layer over library functions.

Each command parses its options, calls one library function and prints the result. Heavy
modules (torch, transformers, SQLAlchemy, …) are imported inside the commands so that
``aacbatch --help`` starts instantly.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import click

from aacbatch import catalog
from aacbatch.errors import AacbatchError
from aacbatch.formatting import FORMATS


class _Group(click.Group):
    """Turns :class:`AacbatchError` — and a file the environment refuses (a read-only or full
    disk, a missing permission) — into one ``aacbatch: error: …`` line and a non-zero exit."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AacbatchError as exc:
            _error(str(exc), exc.exit_code)
        except OSError as exc:  # anything not caught closer to where it happened
            where = f"{exc.filename!r}: " if exc.filename else ""
            _error(f"cannot use {where}{exc.strerror or exc}: check free space and permissions, or choose another "
                   "--home, --cache or output path", 74)  # EX_IOERR


def _error(message: str, code: int) -> None:
    """One line, whatever the message holds (a file name with a newline stays on it)."""
    one_line = message.replace("\r", "\\r").replace("\n", "\\n")
    click.echo(f"aacbatch: error: {one_line}", err=True)
    sys.exit(code)


def _settings(ctx: click.Context):
    from aacbatch.config import Settings

    opts = ctx.find_root().params
    return Settings.resolve(home=opts["home"], db_url=opts["db"], cache_dir=opts["cache"], db_timeout=opts["db_timeout"])


def _registry(ctx: click.Context):
    from aacbatch.registry.store import Registry

    return Registry(_settings(ctx))


def _format_option(func):
    """``--format``: how a table is printed (:data:`aacbatch.formatting.FORMATS`)."""
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)(func)


def _progress(total: int, desc: str, unit: str = "clip"):
    from aacbatch.progress import progress

    return progress(total, desc, unit)


def _device_spec(ctx, param, value):
    """Check ``--device`` now (without importing torch); commands that run a model resolve it
    through :mod:`aacbatch.device`, which reads ``AACBATCH_DEVICE``."""
    if value is None:
        return None
    if not re.fullmatch(catalog.DEVICE_SPEC, value.strip().lower()):
        raise click.BadParameter(f"{value!r}: use auto, cpu, cuda or cuda:N")
    os.environ["AACBATCH_DEVICE"] = value.strip().lower()
    return value


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(file_okay=False), default=None, envvar="AACBATCH_HOME",
              help="Workspace holding the registry and the default cache [env AACBATCH_HOME; default ./aacbatch-home].")
@click.option("--db", default=None, envvar="AACBATCH_DB",
              help="Registry SQLAlchemy URL [env AACBATCH_DB; default duckdb:///HOME/registry.duckdb].")
@click.option("--cache", default=None, envvar="AACBATCH_CACHE", help="Feature cache root [env AACBATCH_CACHE; default HOME/cache].")
@click.option("--db-timeout", type=float, default=None, envvar="AACBATCH_DB_TIMEOUT",
              help="Seconds to wait while another process holds the registry [default 60].")
@click.option("--device", default=None, envvar="AACBATCH_DEVICE", callback=_device_spec,
              help="Where models run: auto (a GPU when present), cpu, cuda or cuda:N [env AACBATCH_DEVICE; default auto].")
@click.version_option(package_name="aacbatch")
def cli(home, db, cache, db_timeout, device):
    """aacbatch: language-based audio retrieval and audio captioning, batch-cached.

    \b
    Data flow:  synth/ingest → split → featurize → train → evaluate → system → report
    Every run, score and system is a row in the SQL registry; query it with `aacbatch sql`.
    """


# --- registry ------------------------------------------------------------------------------

@cli.group()
def db():
    """Registry schema (Alembic migrations)."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx):
    """Apply all migrations (also happens automatically on first use)."""
    status = _registry(ctx).upgrade()
    click.echo(f"{status['url']}: schema at revision {status['current']} (head)")


@db.command("status")
@click.pass_context
def db_status(ctx):
    """Show the registry URL and its schema revision."""
    status = _registry(ctx).status()
    state = "up to date" if status["up_to_date"] else "needs `aacbatch db upgrade`"
    click.echo(f"{status['url']}: revision {status['current'] or 'none (empty database)'}, head {status['head']} — {state}")


@db.command("check")
@click.option("--deep", is_flag=True, help="Read every cached chunk against its checksum (slower) instead of sizes only.")
@click.pass_context
def db_check(ctx, deep):
    """Check the registry: references between rows, files it names, feature-set checksums.

    Exits 1 when anything is wrong, listing each problem on its own line. E.g. aacbatch db check"""
    from aacbatch.integrity import check_registry

    problems, counted = check_registry(_registry(ctx), deep=deep)
    for problem in problems:
        click.echo(f"problem: {problem.where}: {problem.what}")
    summary = ", ".join(f"{n} {what}" for what, n in counted.items())
    click.echo(f"{len(problems)} problem(s) ({summary})" if problems else f"registry ok ({summary})")
    if problems:
        ctx.exit(1)


@cli.command("sql")
@click.argument("query", required=False)
@click.option("--file", "file_", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Read the query from a .sql file.")
@click.option("--query", "named", help="Run a packaged query from sql/queries/ by name (e.g. datasets).")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="Bind :NAME in the query (repeatable).")
@_format_option
@click.option("--write", is_flag=True, help="Commit changes; without it every statement is rolled back.")
@click.pass_context
def sql_cmd(ctx, query, file_, named, params, fmt, write):
    """Run an SQL query against the registry, e.g. aacbatch sql "SELECT name, n_clips FROM datasets"."""
    from aacbatch.formatting import render
    from aacbatch.registry.queries import named_query, run_sql
    from aacbatch.typed import parse_params

    given = [x for x in (query, file_, named) if x]
    if len(given) != 1:
        raise click.UsageError("give exactly one of QUERY, --file or --query")
    path = file_ or (named_query(named) if named else None)
    text = path.read_text(encoding="utf-8") if path else query
    columns, rows = run_sql(_registry(ctx), text, parse_params(params), write=write, source=str(path or "query"))
    if columns:
        click.echo(render(columns, rows, fmt))


# --- data ----------------------------------------------------------------------------------

@cli.command()
@click.argument("fmt", metavar="FORMAT", type=click.Choice(catalog.INGEST_FORMATS))
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="Dataset name in the registry.")
@click.option("--audio-dir", type=click.Path(path_type=Path), help="Audio folder, when not where the format expects it.")
@click.option("--limit", type=int, help="Take only the first N clips (e.g. 40000 WavCaps FreeSound clips).")
@click.option("--replace", is_flag=True, help="Overwrite a dataset of this name whose content differs.")
@click.option("--keep-overlap", is_flag=True,
              help="wavcaps: keep entries that are Clotho/AudioCaps recordings (the dataset row says so).")
@click.option("--exclude", "exclude", multiple=True, type=click.Path(path_type=Path), metavar="FILE",
              help="Leave out the entries this id list names (CSV with an id column, or one id per line; repeatable).")
@click.pass_context
def ingest(ctx, fmt, path, name, audio_dir, limit, replace, keep_overlap, exclude):
    """Register a corpus found at PATH (FORMAT: its layout, one of the choices above).

    WavCaps entries that are Clotho or AudioCaps recordings — on aac-datasets' published
    lists, or with the source id of a registered clip — are left out, counted by reason."""
    from aacbatch.data.ingest import ingest as run_ingest

    result = run_ingest(_registry(ctx), fmt, path, name=name, audio_dir=audio_dir, limit=limit, replace=replace,
                        progress=lambda total: _progress(total, f"checking {name}"), keep_overlap=keep_overlap,
                        exclude=exclude)
    for reason, n in result.dropped.items():
        click.echo(f"excluded {n} entr{'y' if n == 1 else 'ies'}: {reason}")
    for reason, n in result.kept.items():
        click.echo(f"kept {n} overlapping entr{'y' if n == 1 else 'ies'} (--keep-overlap): {reason}")
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{result.name}: {result.status} ({result.n_clips} clips, {result.n_captions} captions)")


@cli.command()
@click.argument("dataset")
@click.option("--from", "sources", default="development,validation", show_default=True, help="Source splits to pool.")
@click.option("--ratio", type=float, default=0.9, show_default=True, help="Share of the pool in the first split.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--into", default="train,val", show_default=True, help="Names of the two resulting splits.")
@click.option("--eval-from", default="auto", show_default=True,
              help="Source split aliased as `eval` (auto: evaluation or test when present; 'none' to skip).")
@click.option("--replace", is_flag=True, help="Redo splits that exist with another recipe.")
@click.pass_context
def split(ctx, dataset, sources, ratio, seed, into, eval_from, replace):
    """Deterministic re-split of DATASET (Clotho dev+val → 9:1 train/val, eval kept)."""
    from aacbatch.data.splits import resplit

    result = resplit(_registry(ctx), dataset, sources=tuple(s.strip() for s in sources.split(",") if s.strip()),
                     ratio=ratio, seed=seed, into=tuple(s.strip() for s in into.split(",")),
                     eval_from=None if eval_from == "none" else eval_from, replace=replace)
    counts = " ".join(f"{k}={v}" for k, v in sorted(result.counts.items()))
    click.echo(f"{dataset}: splits {result.status} ({counts})")
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)


@cli.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--clips", type=int, default=300, show_default=True, help="Number of clips.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--sample-rate", type=int, default=32000, show_default=True)
@click.option("--profile", type=click.Choice(["target", "pretrain"]), default="target", show_default=True,
              help="target: Clotho-like, 5 captions; pretrain: larger-style, noisier, 1 caption.")
@click.option("--duration", default="5,10", show_default=True, metavar="MIN,MAX", help="Clip length range in seconds.")
def synth(out_dir, clips, seed, sample_rate, profile, duration):
    """Generate a SynthCaps dataset (Clotho v2.1 layout + tags.csv) in OUT_DIR.

    OUT_DIR must be new, empty, or an earlier SynthCaps output (which is replaced).
    """
    from aacbatch.data.synthcaps import generate

    lo, hi = _duration_range(duration)
    bar = _progress(clips, f"synth {out_dir.name}")
    try:
        summary = generate(out_dir, clips, seed=seed, sample_rate=sample_rate, profile=profile, duration=(lo, hi),
                           progress=lambda done, total: bar.update(done - bar.n))
    except (ValueError, FileExistsError) as exc:
        raise click.BadParameter(str(exc)) from exc
    finally:
        bar.close()
    counts = " ".join(f"{k}={v}" for k, v in summary.split_counts.items())
    click.echo(f"{out_dir}: {summary.n_clips} clips ({counts}), {len(summary.labels)} event labels")


def _duration_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise click.BadParameter(f"expected MIN,MAX seconds, got {text!r}", param_hint="--duration") from None
    if not 1.0 <= lo <= hi:
        raise click.BadParameter(f"need 1 <= MIN <= MAX seconds, got {text!r}", param_hint="--duration")
    return lo, hi


# --- features ------------------------------------------------------------------------------

@cli.command()
@click.argument("spec")
@click.option("--dataset", required=True, help="Registered dataset to featurize.")
@click.option("--split", help="Only the clips (and their captions) of this split.")
@click.option("--shard", default="0/1", show_default=True, metavar="K/N",
              help="Compute blocks with index % N == K; run N processes (any machines) for N shards.")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes on this machine.")
@click.option("--rebuild", is_flag=True, help="Replace a cache built from another spec, dataset or model.")
@click.option("--skip-bad", is_flag=True, help="Record unusable clips as bad (placeholders) instead of stopping.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a spec key, e.g. --set teacher=RUN_ID.")
@click.option("--from-run", metavar="RUN_ID", help="Encoder run of an `encoded` set (same as --set run=RUN_ID).")
@click.option("--name", help="Register the set under this name (default: the spec's; encoded-<run> for encoded).")
@click.option("--repair", is_flag=True, help="Verify every chunk and recompute exactly the damaged blocks.")
@click.pass_context
def featurize(ctx, spec, dataset, split, shard, workers, rebuild, skip_bad, sets, from_run, name, repair):
    """Compute feature set SPEC (features/SPEC.toml or a path) for a dataset into the Zarr cache.

    \b
    Examples:
      aacbatch featurize mel --dataset clotho
      aacbatch featurize tags --dataset clotho --set teacher=TAGGER_RUN_ID
      aacbatch featurize encoded --dataset clotho --from-run CLAP_RUN_ID
      aacbatch featurize mel --dataset clotho --repair     # after `features verify` found damage
    """
    from aacbatch.featurize.job import featurize as run_featurize, parse_shard
    from aacbatch.typed import parse_pairs

    overrides = parse_pairs(sets) | ({"run": from_run} if from_run else {})
    result = run_featurize(_registry(ctx), spec, dataset, split=split, shard=parse_shard(shard), workers=workers,
                           rebuild=rebuild, skip_bad=skip_bad, overrides=overrides, name=name, progress=_progress,
                           repair=repair)
    if result.repaired:
        click.echo(f"repaired block(s) {', '.join(map(str, result.repaired))}", err=True)
    for _, reason in result.bad:
        click.echo(f"skipped (bad input): {reason}", err=True)
    note = " [random-weight model]" if result.random_weights else ""
    click.echo(f"{result.name} [{dataset}]: {result.status}, {result.n_items} items, "
               f"{result.computed_blocks} blocks computed, {len(result.bad)} bad{note} → {result.url}")


@cli.group()
def mixture():
    """Named mixtures of datasets to train on together."""


@mixture.command("create")
@click.argument("name")
@click.option("--dataset", "spec", required=True, help="Member datasets, comma-separated, in order.")
@click.option("--weight", "weights", multiple=True, type=float,
              help="Per member, in order: examples drawn per epoch (1 each once, 2 twice, 0.5 a random half).")
@click.option("--replace", is_flag=True, help="Redefine an existing mixture of this name.")
@click.pass_context
def mixture_create(ctx, name, spec, weights, replace):
    """Register a mixture, then train on it with --dataset NAME.

    E.g. aacbatch mixture create pretrain --dataset clotho,audiocaps,macs,wavcaps-fsd --weight 2 --weight 1
    --weight 1 --weight 0.5"""
    from aacbatch.data.corpus import define_mixture

    status, members = define_mixture(_registry(ctx), name, spec, weights, replace)
    click.echo(f"mixture {name}: {status} ({', '.join(f'{m.dataset}×{m.weight:g}' for m in members)})")


@mixture.command("list")
@_format_option
@click.pass_context
def mixture_list(ctx, fmt):
    """Registered mixtures with their members and weights."""
    from aacbatch.formatting import render
    from aacbatch.registry.mixtures import mixtures

    rows = [(m.name, k, d, w) for m in mixtures(_registry(ctx)) for k, (d, w) in enumerate(m.members)]
    click.echo(render(["mixture", "position", "dataset", "weight"], rows, fmt))


@cli.group()
def features():
    """Inspect feature sets."""


@features.command("list")
@click.option("--dataset", help="Only this dataset.")
@_format_option
@click.pass_context
def features_list(ctx, dataset, fmt):
    """Feature sets in the registry with their status and path."""
    from aacbatch.formatting import render
    from aacbatch.registry.queries import named_query, run_sql

    columns, rows = run_sql(_registry(ctx), named_query("feature_sets").read_text(), {"dataset": dataset})
    click.echo(render(columns, rows, fmt))


@features.command("verify")
@click.argument("name")
@click.option("--dataset", required=True)
@click.option("--quick", is_flag=True, help="Only check that every chunk exists with its recorded size (no data read).")
@click.pass_context
def features_verify(ctx, name, dataset, quick):
    """Check a feature set's chunks against their checksums; exit 1 naming the damaged blocks.

    E.g. aacbatch features verify mel --dataset clotho"""
    from aacbatch.featurize.inspect import verify_set

    report, line = verify_set(_registry(ctx), dataset, name, deep=not quick)
    click.echo(line)
    if not report.ok:
        ctx.exit(1)


@features.command("show")
@click.argument("name")
@click.option("--dataset", required=True)
@click.pass_context
def features_show(ctx, name, dataset):
    """Spec, fingerprint, model identity, arrays and completion of one feature set."""
    import json

    from aacbatch.featurize.inspect import describe

    click.echo(json.dumps(describe(_registry(ctx), dataset, name), indent=2))


# --- training ------------------------------------------------------------------------------

@cli.command("train")
@click.option("--task", type=click.Choice(list(catalog.TASKS)), metavar="TASK",
              help="What to train: " + "; ".join(f"{t.name}: {t.summary}" for t in catalog.TASKS.values()) + ".")
@click.option("--dataset", help="Registered dataset (its feature sets are the inputs); several as a,b,c or a "
              "mixture's name (retrieval and caption tasks).")
@click.option("--val-dataset", help="With several datasets: the one whose splits validate and score the run "
              "[default: the first].")
@click.option("--weight", "weights", multiple=True, type=float, help="Per --dataset member, in order: examples drawn "
              "per epoch (1 each once, 2 twice, 0.5 a random half).")
@click.option("--config", "config", help="Recipe TOML (a path or a name in aacbatch/recipes/).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a config field (repeatable).")
@click.option("--seed", type=int, help="Random seed (same as --set seed=S).")
@click.option("--init-from", help="Start from this run's best weights and record it as the parent.")
@click.option("--resume", help="Continue an interrupted run from its last checkpoint.")
@click.option("--reuse", is_flag=True, help="If a finished run has the same task, config, inputs and parent, report it instead.")
@click.option("--features", help="Caption task: the encoded feature set to read (same as --set features=NAME).")
@click.pass_context
def train_cmd(ctx, task, dataset, val_dataset, weights, config, sets, seed, init_from, resume, reuse, features):
    """Train a model from cached features and register the run with its scores."""
    from aacbatch.train.run import train_task

    if not resume and not task:
        raise click.UsageError("give --task (or --resume RUN_ID)")
    from aacbatch.train.distributed import world

    sets = (*sets, f"features={json.dumps(features)}") if features else sets
    result = train_task(_registry(ctx), task, dataset=dataset, config=config, sets=sets, seed=seed,
                        init_from=init_from, resume=resume, reuse=reuse, val_dataset=val_dataset, weights=weights,
                        log=click.echo)
    if world()[0] != 0:
        return  # under torchrun, rank 0 reports
    from aacbatch.registry.runs import final_reasons

    for split, metrics in result.final.items():
        shown = _shown(metrics, final_reasons(_registry(ctx), result.run_id, split))
        click.echo(f"{result.task} run {result.run_id} best checkpoint on {split}: {shown}")


@cli.group()
def evaluate():
    """Re-score trained runs."""


def _evaluate_options(func):
    func = click.option("--split", "splits", multiple=True, default=("eval",), show_default=True,
                        help="Split(s) to score.")(func)
    func = click.option("--dataset", help="Score on this registered dataset [default: the run's or system's own].")(func)
    func = click.option("--system", metavar="NAME", help="A system (its members as built) instead of one run.")(func)
    return click.option("--run", "run_id", metavar="RUN_ID", help="A finished run (full id or unique prefix).")(func)


def _evaluate(ctx, run_id, system, dataset, splits, outputs):
    """Scores by split and the reasons of NULL ones, from the library function that applies."""
    from aacbatch.evaluation import evaluate_caption_run, evaluate_retrieval_run, evaluate_system
    from aacbatch.registry.datasets import dataset_name, get_dataset
    from aacbatch.registry.runs import final_reasons, get_run
    from aacbatch.registry.systems import stored_scores, system_by_name
    from aacbatch.train.run import evaluate_run

    if (run_id is None) == (system is None):
        raise click.UsageError("give exactly one of --run RUN_ID or --system NAME")
    registry = _registry(ctx)
    if system is not None:
        row = system_by_name(registry, system)
        on = dataset or dataset_name(registry, row.dataset_id)
        scores = evaluate_system(registry, system, on, splits)
        reasons = stored_scores(registry, row.id, get_dataset(registry, on).id)[1]
        return on, scores, reasons
    run = get_run(registry, run_id)
    own = dataset_name(registry, run.dataset_id)
    if dataset is None or dataset == own:
        scores = evaluate_run(registry, run.id, tuple(splits), outputs)
        return own, scores, {split: final_reasons(registry, run.id, split) for split in scores}
    other = evaluate_caption_run if outputs == ("caption",) else evaluate_retrieval_run
    scores = other(registry, run.id, dataset, splits)
    dataset_id = get_dataset(registry, dataset).id
    return dataset, scores, {split: final_reasons(registry, run.id, split, dataset_id) for split in scores}


@evaluate.command("retrieval")
@_evaluate_options
@click.pass_context
def evaluate_retrieval(ctx, run_id, system, dataset, splits):
    """Score a retrieval (or tagger) run or system on splits of its own or another dataset.

    Scores go to the registry keyed by (run or system, dataset, split), the similarity matrix
    beside them. E.g. aacbatch evaluate retrieval --run 3f2a1b0c --dataset clotho --split eval"""
    on, scores, reasons = _evaluate(ctx, run_id, system, dataset, splits, ("retrieval", "tagging"))
    for split, metrics in scores.items():
        click.echo(f"{on} {split}: " + _shown(metrics, reasons.get(split, {})))
    _echo_leaks(ctx, run_id, system, on, list(scores))


@evaluate.command("caption")
@_evaluate_options
@click.pass_context
def evaluate_caption(ctx, run_id, system, dataset, splits):
    """Caption splits with a caption run or system and score them; scores and captions go to the registry."""
    on, scores, reasons = _evaluate(ctx, run_id, system, dataset, splits, ("caption",))
    for split, metrics in scores.items():
        click.echo(f"{on} {split}: " + _shown(metrics, reasons.get(split, {})))
    _echo_leaks(ctx, run_id, system, on, list(scores))


@evaluate.command("zeroshot")
@click.option("--run", "run_id", metavar="RUN_ID", help="A finished retrieval run (full id or unique prefix).")
@click.option("--system", metavar="NAME", help="A retrieval system: its members' label scores averaged by weight.")
@click.option("--dataset", required=True, help="A registered dataset with labels (esc50, urbansound8k, tags).")
@click.option("--split", "splits", multiple=True, default=("all",), show_default=True,
              help="Split(s) to classify; all = every clip (folds inside a split are scored too).")
@click.option("--prompt", "prompts", multiple=True, metavar="TEMPLATE",
              help="Text template holding {label}; repeat to average several [default: \"this is the sound of {label}\"].")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Draw the confusion matrix of the (first) split as a PNG.")
@click.pass_context
def evaluate_zeroshot(ctx, run_id, system, dataset, splits, prompts, plot):
    """Zero-shot classification: rank the dataset's labels for every clip by the similarity of
    its audio to the label prompts; top-1/top-5 accuracy (with chance level and bootstrap
    intervals, overall and per fold) go to the registry.

    \b
    E.g. aacbatch evaluate zeroshot --run 3f2a1b0c --dataset esc50 \\
           --prompt "this is the sound of {label}" --prompt "a recording of {label}" --plot esc50.png"""
    from aacbatch.zeroshot import evaluate_zeroshot as run_zeroshot, plot_confusion

    if (run_id is None) == (system is None):
        raise click.UsageError("give exactly one of --run RUN_ID or --system NAME")
    result = run_zeroshot(_registry(ctx), dataset=dataset, run=run_id, system=system, splits=splits, prompts=prompts)
    for split, scored in result.scores.items():
        shown = " ".join(f"{name.removeprefix('zeroshot/')}={value:.4f}"
                         + (f" [{scored.intervals[name][0]:.4f}, {scored.intervals[name][1]:.4f}]"
                            if name in scored.intervals and not name.startswith("zeroshot/chance") else "")
                         for name, value in scored.metrics.items())
        click.echo(f"{dataset} {split}: {shown}")
    for split, n in result.unlabelled.items():
        if n:
            click.echo(f"warning: {n} clip(s) of {split} have none of the {len(result.labels)} labels: not scored", err=True)
    if plot is not None:
        first = next(iter(result.classified))
        title = f"{run_id or system} on {dataset} {first} ({len(result.labels)} labels)"
        click.echo(f"confusion matrix written to {plot_confusion(result.classified[first], plot, title)}", err=True)


def _echo_leaks(ctx, run_id, system, dataset, splits, run_ids=None):
    """A ``leak:`` note per split whose clips the run (or a system member) trained on."""
    from aacbatch.audit.leakage import leak_notes
    from aacbatch.registry.runs import get_run
    from aacbatch.registry.systems import members_of, system_by_name

    registry = _registry(ctx)
    if run_ids is None:
        run_ids = ([m for m, _ in members_of(registry, system_by_name(registry, system))] if system
                   else [get_run(registry, run_id).id])
    for note in leak_notes(registry, run_ids, dataset, splits):
        click.echo(note, err=True)


def _shown(values: dict, reasons: dict) -> str:
    """``name=value`` pairs; a NULL metric as ``n/a (reason)``, never hidden."""
    return " ".join(f"{k}={v:.4f}" if v is not None else f"{k}=n/a ({reasons.get(k, 'not computed')})"
                    for k, v in values.items())


@cli.command("caption")
@click.argument("audio", nargs=-1, type=click.Path(path_type=Path))
@click.option("--run", "run_ids", multiple=True,
              help="Caption run (repeat for an ensemble: per-step log-probabilities are averaged).")
@click.option("--weight", "weights", multiple=True, type=float, help="Ensemble weight per --run, in order.")
@click.option("--system", metavar="NAME", help="A caption system: its members with their weights.")
@click.option("--split", help="Caption every clip of this split instead of files.")
@click.option("--dataset", help="The dataset of --split [default: the runs' own].")
@_format_option
@click.pass_context
def caption_cmd(ctx, audio, run_ids, weights, system, split, dataset, fmt):
    """Caption audio files (any rate/channels) or a dataset split with trained captioners.

    \b
    Examples:
      aacbatch caption --run RUN_ID dog.wav street.flac
      aacbatch caption --run RUN_A --run RUN_B --split eval --format json
      aacbatch caption --system caption_s1 --split eval --dataset audiocaps
    """
    from aacbatch.captioning import caption_files, caption_split
    from aacbatch.formatting import render
    from aacbatch.registry.systems import members_of, system_by_name

    if bool(audio) == bool(split):
        raise click.UsageError("give audio files or --split, not both (and not neither)")
    if bool(run_ids) == bool(system):
        raise click.UsageError("give --run (repeatable) or --system, not both (and not neither)")
    if dataset and not split:
        raise click.UsageError("--dataset names the dataset of --split")
    registry = _registry(ctx)
    if system:
        pairs = members_of(registry, system_by_name(registry, system))
        run_ids, weights = [r for r, _ in pairs], [w for _, w in pairs]
    from aacbatch.registry.queries import describe_model
    from aacbatch.registry.runs import get_run

    if fmt in ("table", "md"):  # machine formats stay exactly the data
        click.echo(f"note: model: {describe_model(registry, [get_run(registry, r).id for r in run_ids], system)}",
                   err=True)
    if split:
        result = caption_split(registry, run_ids, split, weights or None, dataset=dataset)
        rows = [(result.names[k], text) for k, text in result.captions.items()]
    else:
        rows = list(zip(map(str, audio), caption_files(registry, run_ids, audio, weights or None)))
    click.echo(render(["file", "caption"], rows, fmt))


# --- metrics -------------------------------------------------------------------------------

@cli.group()
def metrics():
    """Caption metrics (METEOR, CIDEr-D, SPICE, SPIDEr, SPIDEr-FL) and their assets."""


@metrics.command("caption")
@click.option("--predictions", required=True, type=click.Path(path_type=Path), help='JSON {"id": "caption"}.')
@click.option("--references", required=True, type=click.Path(path_type=Path), help='JSON {"id": ["ref", ...]}.')
@click.option("--metrics", "metric_names", default="dcase2023", show_default=True,
              help="A set (dcase2023, dcase2024, all) or metric names, comma-separated (e.g. bleu_4,rouge_l,cider_d).")
@click.option("--candidates", type=click.Path(path_type=Path),
              help='JSON {"id": ["beam 1", "beam 2", …]} for SPIDEr-max (the same number per id).')
@click.option("--sbert", type=click.Path(file_okay=False, path_type=Path),
              help="A local sentence-transformers folder for FENSE [default: HOME/assets/fense/paraphrase-TinyBERT-L6-v2].")
@click.option("--ci", type=float, metavar="LEVEL", help="Also a bootstrap interval over clips at LEVEL %, e.g. 95.")
@click.option("--resamples", type=int, default=1000, show_default=True, help="Bootstrap resamples for --ci.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap draws.")
@click.option("--json", "as_json", is_flag=True, help="Corpus and per-item values (and intervals) as JSON.")
@click.pass_context
def metrics_caption(ctx, predictions, references, metric_names, candidates, sbert, ci, resamples, seed, as_json):
    """Score captions against references; unavailable metrics print as n/a (reason).

    \b
    Example:
      aacbatch metrics caption --predictions preds.json --references refs.json --metrics dcase2024 --ci 95
    """
    import json
    import time

    from aacbatch.evaluate.captions import caption_metrics, load_json_mapping
    from aacbatch.evaluate.uncertainty import NO_INTERVAL, bootstrap_intervals

    if ci is not None and not 0 < ci < 100:
        raise click.UsageError(f"--ci {ci:g}: give a level between 0 and 100, e.g. 95")
    if resamples < 1:
        raise click.UsageError(f"--resamples must be at least 1, got {resamples}")
    names = [n.strip() for n in metric_names.split(",") if n.strip()]
    scores = caption_metrics(load_json_mapping(predictions, str), load_json_mapping(references, list),
                             assets_dir=_settings(ctx).home / "assets", metrics=names,
                             candidates=load_json_mapping(candidates, list) if candidates else None, sbert_model=sbert)
    started = time.perf_counter()
    intervals = bootstrap_intervals(scores.statistics, resamples=resamples, level=ci / 100, seed=seed) if ci else {}
    timings = {**scores.timings, **({f"{resamples} bootstrap resamples of each metric": time.perf_counter() - started}
                                    if ci else {})}
    clean = lambda v: None if v is None or v != v else v  # noqa: E731  (NaN → null)
    if as_json:
        click.echo(json.dumps({"corpus": {k: clean(v) for k, v in scores.corpus.items()}, "reasons": scores.reasons,
                               "intervals": {k: {"low": clean(i.low), "high": clean(i.high), "level": i.level,
                                                 "resamples": i.resamples, "seed": i.seed} for k, i in intervals.items()},
                               "per_item": {m: {i: clean(v) for i, v in d.items()} for m, d in scores.per_item.items()},
                               "seconds": timings}, indent=2))
        return
    for name, value in scores.corpus.items():
        if value is None:
            click.echo(f"{name:<10} n/a ({scores.reasons[name]})")
        elif ci and name in intervals:
            click.echo(f"{name:<10} {value:.4f}  [{intervals[name].low:.4f}, {intervals[name].high:.4f}] ({ci:g} %)")
        else:
            why = f"  (no interval: {NO_INTERVAL[name]})" if ci and name in NO_INTERVAL else ""
            click.echo(f"{name:<10} {value:.4f}{why}")
    click.echo("time: " + ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in timings.items()), err=True)


@metrics.command("install")
@click.option("--from", "from_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder holding the CoreNLP 3.6.0 jars and/or the FENSE checkpoint + bert-base-uncased.")
@click.pass_context
def metrics_install(ctx, from_dir):
    """Copy user-supplied metric assets (SPICE's CoreNLP jars, FENSE) into HOME/assets."""
    from aacbatch.evaluate.captions import install_assets

    for path in install_assets(from_dir, _settings(ctx).home / "assets"):
        click.echo(f"installed {path}")


# --- systems and reports -------------------------------------------------------------------

@cli.group()
def system():
    """Ensembles whose members an SQL query picks (sql/systems/*.sql): build, list, show."""


@system.command("build")
@click.argument("name")
@click.option("--query", "query_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Your own .sql query returning run_id [, weight, expected] (NAME then only names the system).")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="Override a query parameter (repeatable).")
@click.option("--split", "splits", multiple=True, default=("val", "eval"), show_default=True, help="Split(s) to evaluate on.")
@click.pass_context
def system_build(ctx, name, query_file, params, splits):
    """Build system NAME: run its query, ensemble the members, score and record it.

    \b
    Examples:
      aacbatch system build retrieval_s1
      aacbatch system build retrieval_s1 --param split=eval     # select on eval, as the paper did
      aacbatch system build my_top2 --query top2.sql --param k=2
    """
    from aacbatch.typed import parse_params
    from aacbatch.systems import build_system

    result = build_system(_registry(ctx), name, query_file=query_file, params=parse_params(params), splits=splits)
    n = len(result.members)
    click.echo(f"system {result.name} ({result.kind}, {n} member{'s' if n != 1 else ''}): {result.status}")
    chosen = ", ".join(f"{k}={v}" for k, v in result.params.items() if k != "dataset")
    click.echo(f"  on dataset {result.dataset}{f' ({chosen})' if chosen else ''}")
    for member in result.members:
        click.echo(f"  {member.rank}. {member.run_id} weight {member.weight:g}")
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    for split, values in result.scores.items():
        shown = " ".join(f"{k}={v:.4f}" if v is not None else f"{k}=n/a ({result.reasons[split].get(k, 'no reason')})"
                         for k, v in values.items())
        click.echo(f"{split}: {shown}")
    if result.dataset is not None:
        _echo_leaks(ctx, None, None, result.dataset, list(result.scores), run_ids=[m.run_id for m in result.members])


@system.command("list")
@_format_option
@click.pass_context
def system_list(ctx, fmt):
    """Systems with their kind, members and headline scores."""
    from aacbatch.formatting import render
    from aacbatch.systems import list_systems

    click.echo(render(*list_systems(_registry(ctx)), fmt))


@system.command("show")
@click.argument("name")
@click.pass_context
def system_show(ctx, name):
    """A system's query, parameters, members and scores."""
    from aacbatch.formatting import render
    from aacbatch.systems import show_system

    info = show_system(_registry(ctx), name)
    click.echo(f"system {info['name']} ({info['kind']}), id {info['id']}, built {info['built']}")
    click.echo(f"params: {' '.join(f'{k}={v}' for k, v in info['params'].items()) or 'none'}")
    for warning in info["warnings"]:
        click.echo(f"warning: {warning}")
    click.echo("\n" + render(*info["members"]))
    for split, values in sorted(info["scores"].items()):
        shown = " ".join(f"{k}={v:.4f}" if v is not None else f"{k}=n/a ({info['reasons'].get(split, {}).get(k)})"
                         for k, v in sorted(values.items()))
        click.echo(f"{split}: {shown}")
    click.echo("\n" + info["query"].rstrip())


@cli.command("report")
@click.argument("name")
@click.argument("compared", nargs=-1, metavar="[A B]")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="Override a report parameter (repeatable).")
@_format_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the report to this file instead of printing it.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Also draw it as a PNG (table1, table2, curves).")
@click.option("--with-paper", is_flag=True, help="Add the paper's published numbers (table1, table2), labelled as the paper's.")
@click.option("--ci", type=float, metavar="LEVEL", help="Show each metric's bootstrap interval (stored at 95).")
@click.option("--split", default="eval", show_default=True, help="compare: the split both are scored on.")
@click.option("--dataset", help="compare: the dataset [default: A's own].")
@click.pass_context
def report(ctx, name, compared, params, fmt, out, plot, with_paper, ci, split, dataset):
    """Print report NAME (sql/reports/NAME.sql: table1, table2, runs, seeds, curves; or a .sql
    path), or `report compare A B`: runs or systems A and B on the same split, per metric the
    difference A − B, its 95 % paired-bootstrap interval and a randomisation p-value.

    \b
    Examples:
      aacbatch report table1 --with-paper --ci 95
      aacbatch report table2 --format md --out table2.md
      aacbatch report curves --param task=clap_tag --plot curves.png
      aacbatch report seeds --param metric=t2a/mAP@10
      aacbatch report compare retrieval_s1 3f2a1b0c --split eval
    """
    from aacbatch.formatting import render
    from aacbatch.reports import plot_report, render_report, run_report
    from aacbatch.typed import parse_params

    if ci is not None and ci != 95:
        raise click.UsageError(f"--ci {ci:g}: intervals are computed and stored at 95 %; use --ci 95")
    if name == "compare":
        from aacbatch.comparison import compare_models

        if len(compared) != 2:
            raise click.UsageError("report compare needs two runs or systems: A B")
        result = compare_models(_registry(ctx), *compared, split=split, dataset=dataset)
        text = f"{result.title}\n" + render(result.columns, result.rows, fmt)
    else:
        if compared:
            raise click.UsageError(f"report {name} takes no further arguments (only `report compare A B` does)")
        result = run_report(_registry(ctx), name, parse_params(params), with_paper=with_paper)
        text = render_report(result, fmt, ci=ci is not None)
        if plot is not None:
            click.echo(f"plot written to {plot_report(result, plot)}", err=True)
    if out is None:
        click.echo(text)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
        click.echo(f"{name} written to {out}", err=True)


# --- clean training data ------------------------------------------------------------------

@cli.group()
def audit():
    """Evaluation audio in training data: acoustic overlap audits and per-run leakage."""


@audit.command("overlap")
@click.argument("datasets", nargs=-1, required=True)
@click.option("--pairs", type=click.Choice(("all", "within", "across")), default="all", show_default=True,
              help="Compare clips within each dataset, across datasets, or both.")
@click.option("--features", default="mel", show_default=True, help="The log-mel feature set to read.")
@click.option("--workers", type=int, default=1, show_default=True, help="Threads for fingerprinting and checks.")
@_format_option
@click.pass_context
def audit_overlap(ctx, datasets, pairs, features, workers, fmt):
    """Find duplicate and near-duplicate audio (crops, resampled or re-encoded copies) among
    the clips of DATASETS from their cached log-mels; the matches go to the registry.

    \b
    Example:
      aacbatch featurize mel --dataset clotho && aacbatch featurize mel --dataset wavcaps
      aacbatch audit overlap clotho wavcaps
    """
    from aacbatch.audit.datasets import audit_datasets
    from aacbatch.formatting import render

    result = audit_datasets(_registry(ctx), datasets, features=features, pairs=pairs, workers=workers)
    click.echo(f"audit {result.audit_id[:8]}: {len(result.matches)} match(es) among {result.n_clips} clips")
    if result.matches:
        click.echo(render(*_match_table(result.matches), fmt))


def _match_table(matches) -> tuple[list[str], list[tuple]]:
    columns = ["dataset_a", "clip_a", "start_a", "dataset_b", "clip_b", "start_b", "seconds", "score"]
    return columns, [(m.dataset_a, m.clip_a, round(m.start_a, 2), m.dataset_b, m.clip_b, round(m.start_b, 2),
                      round(m.duration, 2), round(m.score, 3)) for m in matches]


@audit.command("matches")
@click.argument("datasets", nargs=-1)
@_format_option
@click.pass_context
def audit_matches(ctx, datasets, fmt):
    """Stored audit matches (those touching DATASETS, if given)."""
    from aacbatch.formatting import render
    from aacbatch.registry.audits import stored_matches

    click.echo(render(*_match_table(stored_matches(_registry(ctx), datasets)), fmt))


@audit.command("leak")
@click.option("--run", "run_id", required=True, metavar="RUN_ID", help="A run (full id or unique prefix).")
@click.option("--dataset", help="The evaluation dataset [default: the run's own].")
@click.option("--split", default="eval", show_default=True)
@click.pass_context
def audit_leak(ctx, run_id, dataset, split):
    """Which clips of SPLIT the run, or a run it descends from, trained on."""
    from aacbatch.audit.leakage import run_leakage
    from aacbatch.registry.datasets import dataset_name
    from aacbatch.registry.runs import get_run

    registry = _registry(ctx)
    run = get_run(registry, run_id)
    leakage = run_leakage(registry, run.id, dataset or dataset_name(registry, run.dataset_id), split)
    click.echo(leakage.note() or f"no leak: none of the {leakage.n_clips} {leakage.dataset} {split} clips was "
               f"trained on by run {run.id[:8]} or its ancestors (by clip, source id or audit)")


# --- search your own audio -----------------------------------------------------------------

def _model_options(func):
    """``--run`` / ``--system``: the model of an index (``index``, ``search``)."""
    func = click.option("--system", metavar="NAME",
                        help="A retrieval system: the weighted mean of its members' similarities.")(func)
    return click.option("--run", "run_id", metavar="RUN_ID", help="A retrieval run (full id or unique prefix): " + ", ".join(catalog.tasks_where(family="retrieval")) + ".")(func)


@cli.command("index")
@click.argument("audio_dir", type=click.Path(file_okay=False, path_type=Path))
@_model_options
@click.option("--name", help="Index name [default: the folder's name].")
@click.option("--caption-run", "caption_runs", multiple=True, metavar="RUN_ID",
              help="Also store a generated caption per file (repeat for an ensemble of caption runs).")
@click.option("--max-seconds", type=float, default=60.0, show_default=True,
              help="Embed at most the first S seconds of each file (with --window: the longest window allowed).")
@click.option("--window", type=float, metavar="S",
              help="Embed every file whole, as overlapping windows of S seconds (hits name the time span).")
@click.option("--hop", type=float, metavar="S", help="Seconds between window starts [default: half the --window].")
@click.option("--ann-above", type=int, default=200_000, show_default=True, metavar="N",
              help="Also build an approximate nearest-neighbour index (FAISS) when the index holds N windows or more.")
@click.option("--replace", is_flag=True, help="Rebuild an index of this name made from another folder or model.")
@click.option("-v", "--verbose", is_flag=True, help="Also name every file skipped as not audio.")
@click.pass_context
def index_cmd(ctx, audio_dir, run_id, system, name, caption_runs, max_seconds, window, hop, ann_above, replace, verbose):
    """Embed every audio file below AUDIO_DIR (whatever libsndfile decodes: wav, flac, ogg/oga,
    mp3, …, whatever the extension; any rate and channels) for search.

    Re-running it is incremental: unchanged files are kept, new and changed files embedded,
    deleted files dropped; an interrupted run resumes. E.g. aacbatch index ~/sounds --run RUN_ID,
    or aacbatch index ~/recordings --run RUN_ID --window 10 --hop 5 for long recordings.
    """
    from aacbatch.search.index import build_index

    result = build_index(_registry(ctx), audio_dir, run=run_id, system=system, name=name, caption_runs=caption_runs,
                         max_seconds=max_seconds, window=window, hop=hop, replace=replace, ann_above=ann_above,
                         progress=lambda total, desc: _progress(total, desc, "window"))
    for file, reason in result.unreadable:
        click.echo(f"skipped (unreadable): {file}: {reason}", err=True)
    for file in result.non_audio_files if verbose else ():
        click.echo(f"skipped (not audio): {file}", err=True)
    if result.cut:
        click.echo(f"note: {result.cut} file(s) longer than {max_seconds:g} s: only their first {max_seconds:g} s "
                   "are embedded", err=True)
    click.echo(f"index {result.name}: {result.status}, {result.n_files} files ({result.kept} kept, {result.added} added, "
               f"{result.changed} changed, {result.removed} removed; {result.embedded} embedded now); skipped "
               f"{len(result.unreadable)} unreadable and {result.non_audio} non-audio files → {result.url}")


@cli.command("search")
@click.argument("query", required=False)
@click.option("--text", "text", metavar="TEXT", help="The query text (instead of QUERY; mixes with --like).")
@click.option("--like", "like_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Query by example: an audio file, embedded like one window of the index.")
@click.option("--like-id", "like_id", type=int, metavar="ID", help="Query by example: a file of the index (its id).")
@click.option("--at", "like_at", type=float, metavar="S", help="With --like-id: its window starting at S seconds.")
@click.option("--weight", type=float, default=0.5, show_default=True,
              help="With a text and an example: the text's share of the score (1 − it is the example's).")
@click.option("--queries", "queries_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Many queries from one model load: one per line (TEXT<TAB>EXPECTED_FILE to rank a file), or JSON.")
@click.option("--index", "index_name", required=True, help="Index to search (see `aacbatch index`).")
@click.option("-k", "k", type=int, default=10, show_default=True, help="Number of hits to list.")
@click.option("--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True)
@click.option("--exact", is_flag=True, help="Score every window even where the index has an ANN index.")
@_model_options
@click.pass_context
def search_cmd(ctx, query, text, like_file, like_id, like_at, weight, queries_file, index_name, k, fmt, exact, run_id,
               system):
    """Rank the files of an index by similarity to QUERY, e.g. aacbatch search "a dog barks" --index sounds.

    --like FILE / --like-id ID search by example (audio → audio); with a text too, --weight
    mixes both. A windowed index lists time spans (start, end). --run/--system are optional:
    given, they must be the model that built the index. With --queries FILE every query is
    answered from one load, and a query that names the file it should find reports that
    file's rank (a way to measure a model on your own folder).
    """
    import json

    from aacbatch.errors import InputError
    from aacbatch.formatting import render
    from aacbatch.search.query import Query, Searcher, check_example, check_query, check_weight, read_queries

    if query is not None and text is not None:
        raise click.UsageError("give the query text once: as QUERY or as --text")
    query = query if text is None else text
    like = None
    if like_file is not None or like_id is not None or like_at is not None:  # checked before any load
        if queries_file is not None:
            raise click.UsageError("--queries takes text queries only: drop --like/--like-id")
        like = check_example(like_file, like_id, like_at)
    if queries_file is None and query is None and like is None:
        raise click.UsageError("give a QUERY (or --text), --like FILE, --like-id ID or --queries FILE")
    if queries_file is not None and query is not None:
        raise click.UsageError("give a QUERY or --queries FILE, not both")
    if query is not None and like is not None:
        check_weight(weight)
    if queries_file:
        queries = read_queries(queries_file, k)
    elif query is not None:
        queries = [Query(check_query(query, k))]
    elif k < 1:
        raise InputError(f"-k must be at least 1, got {k}")
    searcher = Searcher.open(_registry(ctx), index_name, run=run_id, system=system)
    if like is not None and like.file_id is not None:
        searcher.index.window_of(like.file_id, like.at)  # an unknown id or window: one line, before any output
    if fmt == "table":  # machine formats stay exactly the data
        click.echo(f"note: model: {searcher.describe_model()}", err=True)
    if like is not None:
        results = [searcher.search(query, k, like=like, weight=weight, exact=exact)]
    else:
        results = searcher.search_many(queries, k, exact=exact)
    for note in sorted({n for r in results for n in r.notes}):
        click.echo(f"note: {note}", err=True)
    hits_of = lambda r: [{"rank": h.rank, "score": h.score, "id": h.id, "file": h.file,  # noqa: E731
                          "path": str(searcher.index.folder / h.file), "duration": h.duration, "caption": h.caption,
                          "start": h.start, "end": h.end, "at": h.at}
                         for h in r.hits]
    if fmt == "json":
        out = [{"query": r.query, "hits": hits_of(r), "expected": r.expected, "expected_rank": r.expected_rank}
               for r in results] if queries_file else hits_of(results[0])
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    if queries_file:
        rows = [(r.query, r.hits[0].file, r.hits[0].score, r.expected or "", r.expected_rank) for r in results]
        click.echo(render(["query", "top file", "score", "expected", "expected rank"], rows, "table"))
        ranked = [r.expected_rank for r in results if r.expected_rank is not None]
        if ranked:
            import statistics

            click.echo(f"{len(ranked)} queries with an expected file: R@1 {sum(r <= 1 for r in ranked) / len(ranked):.3f}, "
                       f"R@{k} {sum(r <= k for r in ranked) / len(ranked):.3f}, median rank {statistics.median(ranked):g}")
        return
    with_captions, windowed = searcher.index.captions is not None, searcher.index.windowed
    columns = ["rank", "score", "file"] + (["start", "end"] if windowed else []) + (["caption"] if with_captions else [])
    rows = [(h.rank, h.score, h.file) + ((round(h.start, 2), round(h.end, 2)) if windowed else ())
            + ((h.caption,) if with_captions else ()) for h in results[0].hits]
    click.echo(render(columns, rows, "table"))


@cli.command("embed")
@click.argument("audio", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@_model_options
@click.option("--dataset", metavar="NAME", help="Embed the clips of an ingested dataset (with their ids and captions).")
@click.option("--split", metavar="SPLIT", help="With --dataset: only this split.")
@click.option("--text", "texts", multiple=True, metavar="TEXT", help="Embed a text (repeat for more).")
@click.option("--max-seconds", type=float, default=60.0, show_default=True,
              help="Embed at most the first S seconds of each audio file (as `aacbatch index`).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="FILE.parquet (items with an embedding column) or FILE.npy (the matrix alone).")
@click.pass_context
def embed_cmd(ctx, audio, run_id, system, dataset, split, texts, max_seconds, out):
    """Write audio or text embeddings of a run or system, e.g. aacbatch embed --run RUN_ID
    --dataset clotho --split evaluation --out emb.parquet, then aacbatch sql "SELECT * FROM 'emb.parquet'".

    A system's vector concatenates its members' embeddings scaled by sqrt(weight share): the
    dot product of an audio and a text vector is the system's score.
    """
    from aacbatch.search.embed import check_output, embed, write

    check_output(out)  # before any model loads
    result = embed(_registry(ctx), run=run_id, system=system, dataset=dataset, split=split, audio=audio, texts=texts,
                   max_seconds=max_seconds)
    written = write(result, out)
    click.echo(f"{len(result)} {result.kind} embeddings ({result.vectors.shape[1]}-d) → {written}")


@cli.command("serve")
@click.option("--index", "index_name", default=None, help="Index to search (the search page at /).")
@click.option("--registry-only", is_flag=True,
              help="Serve only the registry dashboard (runs, lineage, curves, systems, tables), without an index.")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; the default is this machine only (0.0.0.0 would expose the indexed files).")
@click.pass_context
def serve_cmd(ctx, index_name, registry_only, port, host):
    """A local page: search over an index (query box, ranked files with captions and players)
    and the registry dashboard (/runs, /systems, /tables/table1, /compare; JSON under /api)."""
    from aacbatch.dashboard.reader import check_schema
    from aacbatch.errors import InputError
    from aacbatch.search.query import Searcher
    from aacbatch.search.web import listen, make_server

    if registry_only == (index_name is not None):
        raise InputError("serve needs either --index NAME (search page and dashboard) or --registry-only (dashboard alone)")
    sock = listen(host, port)  # a busy port is one line before the model loads
    registry = _registry(ctx)
    check_schema(registry)
    searcher = Searcher.open(registry, index_name) if index_name else None
    server = make_server(searcher, host, port, sock, registry=registry)
    url = f"http://{host}:{server.server_port}/"
    if searcher is None:
        click.echo(f"serving the registry dashboard of {registry.url} at {url}runs — Ctrl-C stops")
    else:
        click.echo(f"serving index {index_name} ({len(searcher.index)} files; model: {searcher.describe_model()}) at "
                   f"{url} and the registry dashboard at {url}runs — Ctrl-C stops")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


# --- demo ----------------------------------------------------------------------------------

@cli.command()
@click.option("--scale", type=click.Choice(catalog.DEMO_SCALES), default="tiny", show_default=True,
              help="tiny/small: short clips and a narrow CNN14 for CPUs; gpu: 10 s clips and the paper-size CNN14 on a GPU.")
@click.pass_context
def demo(ctx, scale):
    """Run the pipeline end to end on generated SynthCaps data (what `make demo` runs).

    Trains the teacher tagger, five retrieval models, twelve captioners and both baselines,
    builds the eight systems and prints Table 1 and Table 2 (tiny: 15–25 minutes on two
    CPU cores; a second run reuses everything and only re-prints).

    \b
    Example:  aacbatch --home ~/aacbatch-gpu --device cuda demo --scale gpu"""
    from aacbatch.demo import run_demo

    run_demo(_settings(ctx), scale=scale, echo=click.echo, progress=_progress)


def main() -> None:
    cli(prog_name="aacbatch")


if __name__ == "__main__":
    main()
