"""Caption metrics as the field computes them: BLEU, ROUGE-L, METEOR, CIDEr-D, SPICE, SPIDEr(-FL, -max), FENSE, Vocab.

Candidates and references are PTB-tokenised once, as pycocoevalcap and aac-metrics do it
(:mod:`aacbatch.evaluate.ptb`), and the same tokens go to every metric -- the fluency detector
and Sentence-BERT included, as in aac-metrics' ``evaluate`` (the DCASE 2023/2024 scorer). Each
metric is a small class with one ``compute`` entry point, checked against its reference:

* BLEU-1..4, ROUGE-L -- pycocoevalcap's own scorers (:mod:`aacbatch.evaluate.bleu_rouge`);
  corpus BLEU is pycocoevalcap's corpus value (from summed n-gram counts, not a mean);
* METEOR 1.5 -- :mod:`aacbatch.evaluate.meteor` (the jar's corpus score, not a mean);
* CIDEr-D -- :mod:`aacbatch.evaluate.cider` (vectorised, equal to pycocoevalcap's ``Cider``);
* SPICE -- :mod:`aacbatch.evaluate.spice` (needs user-installed CoreNLP 3.6.0 jars);
* SPIDEr = (CIDEr-D + SPICE) / 2 per item, and its mean;
* SPIDEr-FL = SPIDEr x (1 - 0.9 [fluency error]) per item with FENSE's detector
  (:mod:`aacbatch.evaluate.fense`), and its mean;
* sbert_sim -- mean cosine of Sentence-BERT embeddings of candidate and references
  (:mod:`aacbatch.evaluate.sbert`); FENSE = sbert_sim x (1 - 0.9 [fluency error]) per item;
* Vocab -- the number of distinct words of the tokenised candidates (aac-metrics' ``vocab.cands``);
  a corpus count, with no per-item values;
* SPIDEr-max -- per clip, the best SPIDEr among its beam candidates (``candidates``), each
  scored like a prediction (CIDEr-D weights from the same references), and its mean.

Named sets (:data:`METRIC_SETS`, :func:`resolve_metrics`): ``dcase2023`` (METEOR, CIDEr-D,
SPICE, SPIDEr, SPIDEr-FL), ``dcase2024`` (+ FENSE, Vocab) and ``all``. A metric whose assets
are missing comes back as None with a one-line reason, never estimated. Every available
metric also comes back as a resamplable :class:`~aacbatch.evaluate.statistics.CorpusStatistic`
(for :mod:`aacbatch.evaluate.uncertainty`; Vocab aside) and with its provenance record
(:mod:`aacbatch.evaluate.provenance`). :func:`install_assets` copies the user's asset files
into an assets directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import shutil
import zipfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np

from aacbatch.config import Settings
from aacbatch.errors import InputError, shown
from aacbatch.evaluate import fense, sbert, spice
from aacbatch.evaluate.bleu_rouge import ORDERS, Bleu, RougeL, bleu_statistic
from aacbatch.evaluate.cider import CiderD
from aacbatch.evaluate.meteor import meteor_statistic, shared_meteor
from aacbatch.evaluate.provenance import caption_provenance
from aacbatch.evaluate.ptb import tokenize
from aacbatch.evaluate.statistics import CorpusStatistic, mean_statistic
from aacbatch.evaluate.uncertainty import bootstrap_intervals
from aacbatch.textfiles import read_utf8

METRICS = ("meteor", "cider_d", "spice", "spider", "spider_fl")  # the default, as before the named sets
BLEU = tuple(f"bleu_{n}" for n in range(1, ORDERS + 1))
ALL_METRICS = (*BLEU, "rouge_l", "meteor", "cider_d", "spice", "spider", "spider_fl", "sbert_sim", "fense",
               "vocab", "spider_max")
METRIC_SETS = {
    "dcase2023": ("meteor", "cider_d", "spice", "spider", "spider_fl"),
    "dcase2024": ("meteor", "cider_d", "spice", "spider", "spider_fl", "fense", "vocab"),
    "all": ALL_METRICS,
}
# What a run's or system's final evaluation stores: every metric but the ones that need beam
# candidates (SPIDEr-max) or only exist as FENSE's part (sbert_sim).
EVALUATION_METRICS = (*BLEU, "rouge_l", "meteor", "cider_d", "spice", "spider", "spider_fl", "fense", "vocab")
FLUENCY_PENALTY = 0.9
# What each metric needs computed first (transitively closed).
_NEEDS = {"spider": ("cider_d", "spice"), "spider_fl": ("cider_d", "spice", "spider"), "fense": ("sbert_sim",),
          "spider_max": ("cider_d", "spice")}
NO_CANDIDATES = "SPIDEr-max needs several candidates per clip (beam search output): none were given"


@dataclass(frozen=True)
class CaptionScores:
    """Corpus values for the requested metrics (None when unavailable), why, per-item values,
    resamplable corpus statistics and provenance.

    ``per_item[metric][id]`` exists for every available metric with per-item values (all but
    ``vocab``) and every id, in input order; for BLEU they are pycocoevalcap's per-item BLEU,
    whose mean is *not* the corpus BLEU. ``statistics[metric]`` exists for every available
    metric except ``vocab``; ``provenance[metric]`` for every available metric.
    """

    corpus: dict[str, float | None]
    reasons: dict[str, str]
    per_item: dict[str, dict[str, float]]
    statistics: dict[str, CorpusStatistic] = field(default_factory=dict)
    provenance: dict[str, dict] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage: where the time went


def resolve_metrics(metrics: str | Sequence[str]) -> tuple[str, ...]:
    """Metric names with set names (``dcase2023``, ``dcase2024``, ``all``) expanded, in order, once each."""
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    resolved: list[str] = []
    for name in names:
        expanded = METRIC_SETS.get(name, (name,))
        for metric in expanded:
            if metric not in ALL_METRICS:
                choices = ", ".join([*ALL_METRICS, *METRIC_SETS])
                raise InputError(f"unknown caption metric {metric!r}: choose from {choices}")
            if metric not in resolved:
                resolved.append(metric)
    return tuple(resolved)


@dataclass(frozen=True)
class CaptionEvaluation:
    """Generated captions (clip id → text) scored with every caption metric of
    :data:`EVALUATION_METRICS`: corpus values (None where an asset is missing), why, each
    metric's bootstrap interval over clips (low, high, level) and its provenance."""

    metrics: dict[str, float | None]
    reasons: dict[str, str]
    captions: dict[str, str]
    intervals: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    provenance: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def score(cls, captions: dict[str, str], references: dict[str, list[str]], assets_dir: Path) -> "CaptionEvaluation":
        empty = [k for k, v in captions.items() if not v.strip()]
        if empty:  # a model can emit END first; score it as the empty caption it is, visibly
            raise InputError(f"the captioner produced an empty caption for {len(empty)} clip(s) (e.g. {empty[0]}): "
                             "train it longer or check its inputs")
        scores = caption_metrics(captions, references, assets_dir=assets_dir, metrics=EVALUATION_METRICS)
        intervals = {name: (i.low, i.high, i.level) for name, i in bootstrap_intervals(scores.statistics).items()}
        return cls(scores.corpus, scores.reasons, captions, intervals, scores.provenance)


def caption_metrics(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]], *,
                    assets_dir: Path | None = None, metrics: str | Sequence[str] = METRICS,
                    candidates: Mapping[str, Sequence[str]] | None = None,
                    sbert_model: Path | None = None) -> CaptionScores:
    """Score one caption per id against that id's references.

    ``metrics``: names and/or set names (:func:`resolve_metrics`). ``candidates``: for
    SPIDEr-max, every id's beam candidates (the same number for every id; usually the
    prediction is one of them). ``sbert_model``: a local sentence-transformers folder for
    sbert_sim and FENSE (default: FENSE's ``paraphrase-TinyBERT-L6-v2`` under the assets).
    ``assets_dir`` defaults to ``<AACBATCH_HOME>/assets``. Raises :class:`InputError` for an
    unknown metric, an empty prediction, reference or candidate, an empty reference list, an
    id that is not on both sides, or candidates that do not match the predictions' ids.
    """
    metrics = resolve_metrics(metrics)
    ids = _check_inputs(predictions, references)
    assets = Path(assets_dir) if assets_dir is not None else Settings.resolve().home / "assets"
    wanted = {dep for m in metrics for dep in (m, *_NEEDS.get(m, ()))}
    if "spider_max" in wanted and candidates is not None:
        _check_candidates(candidates, ids)

    spice_scorer = spice.Spice(assets)
    fluency = fense.FluencyErrors(assets)
    similarity = sbert.SentenceSimilarity(sbert_model if sbert_model is not None else sbert.sbert_dir(assets))
    reasons = _unavailable(wanted, spice_scorer, fluency, similarity, candidates)
    results: dict[str, tuple[float, np.ndarray | None]] = {}
    statistics: dict[str, CorpusStatistic] = {}
    beams_wanted = "spider_max" in wanted and "spider_max" not in reasons

    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = timings.get(stage, 0.0) + now - clock
        clock = now

    with ExitStack() as stack:
        # METEOR's JVM starts first and loads its paraphrase table while the tokenizer runs.
        meteor = stack.enter_context(shared_meteor()) if "meteor" in wanted else None
        cands, refs, beams = _tokenize(ids, predictions, references, candidates if beams_wanted else None)
        lap("JVM start + PTB tokenise")
        # The jar scores in its own process; the Python metrics run meanwhile.
        pool = stack.enter_context(ThreadPoolExecutor(1))
        meteor_job = pool.submit(meteor.compute_with_stats, cands, refs) if meteor is not None else None
        if wanted & set(BLEU):
            corpus, per_item, stats = Bleu().compute(cands, refs)
            for n in range(1, ORDERS + 1):
                results[f"bleu_{n}"] = (float(corpus[n - 1]), per_item[:, n - 1])
                statistics[f"bleu_{n}"] = bleu_statistic(ids, stats, n)
        if "rouge_l" in wanted:
            results["rouge_l"] = RougeL().compute(cands, refs)
        if "cider_d" in wanted:
            results["cider_d"] = CiderD().compute(cands, refs)
        if "vocab" in wanted:
            results["vocab"] = (float(len({word for cand in cands for word in cand.split()})), None)
        available = [m for m in metrics if m not in reasons]
        provenance = caption_provenance(available, assets_dir=assets, sbert_model=similarity.model_dir)
        lap("BLEU, ROUGE-L, CIDEr-D, Vocab, provenance (while METEOR scores)")
        if meteor_job is not None:
            corpus, per_item, stats = meteor_job.result()
            results["meteor"] = (corpus, per_item)
            statistics["meteor"] = meteor_statistic(ids, stats)
            lap("METEOR (waiting for the jar)")

    if "spice" in wanted and "spice" not in reasons:
        _spice_family(results, spice_scorer, cands, refs, beams)
        lap("SPICE")
    # One set of fluency flags, from the tokenised candidates, for SPIDEr-FL and FENSE alike.
    errors = fluency.compute(cands) if wanted & ({"spider_fl", "fense"} - set(reasons)) else None
    if "spider_fl" in wanted and "spider_fl" not in reasons:
        results["spider_fl"] = _mean_of(results["spider"][1] * (1.0 - FLUENCY_PENALTY * errors))
    if "sbert_sim" in wanted and "sbert_sim" not in reasons and ("sbert_sim" in metrics or "fense" not in reasons):
        results["sbert_sim"] = _mean_of(similarity.compute(cands, refs))
        if "fense" in wanted and "fense" not in reasons:
            results["fense"] = _mean_of(results["sbert_sim"][1] * (1.0 - FLUENCY_PENALTY * errors))

    lap("fluency, SBERT, FENSE")
    for metric, (_, per_item) in results.items():
        if per_item is not None and metric not in statistics:
            statistics[metric] = mean_statistic(ids, per_item)
    return CaptionScores(
        corpus={m: results[m][0] if m in results else None for m in metrics},
        reasons={m: reasons[m] for m in metrics if m in reasons},
        per_item={m: dict(zip(ids, map(float, results[m][1]))) for m in metrics
                  if m in results and results[m][1] is not None},
        statistics={m: statistics[m] for m in metrics if m in statistics},
        provenance={m: provenance[m] for m in metrics if m in results},
        timings={k: v for k, v in timings.items() if v > 0.0005},
    )


def _unavailable(wanted: set[str], spice_scorer: spice.Spice, fluency: fense.FluencyErrors,
                 similarity: sbert.SentenceSimilarity, candidates: Mapping | None) -> dict[str, str]:
    """Metric -> why it cannot be computed here, for the wanted metrics whose assets or inputs are missing."""
    reasons: dict[str, str] = {}
    if wanted & {"spice", "spider", "spider_fl", "spider_max"} and (reason := spice_scorer.missing()):
        reasons.update(dict.fromkeys(("spice", "spider", "spider_fl", "spider_max"), reason))
    if "spider_max" in wanted and "spider_max" not in reasons and candidates is None:
        reasons["spider_max"] = NO_CANDIDATES
    if wanted & {"sbert_sim", "fense"} and (reason := similarity.missing()):
        reasons.update(dict.fromkeys(("sbert_sim", "fense"), reason))
    if wanted & {"spider_fl", "fense"} and (reason := fluency.missing()):
        for metric in ("spider_fl", "fense"):
            reasons.setdefault(metric, reason)
    return {metric: reason for metric, reason in reasons.items() if metric in wanted}


def _spice_family(results: dict, scorer: spice.Spice, cands: list[str], refs: list[list[str]],
                  beams: list[list[str]] | None) -> None:
    """SPICE and SPIDEr of the predictions, and SPIDEr-max of the beams, from one SPICE run.

    SPICE scores each (candidate, references) pair on its own, so the beam candidates join the
    predictions' batch (each with its clip's references) and the JVM starts once.
    """
    k = len(beams[0]) if beams else 0
    flat_beams = [beam for clip in beams for beam in clip] if beams else []
    _, per_pair = scorer.compute([*cands, *flat_beams], [*refs, *(r for r in refs for _ in range(k))])
    results["spice"] = _mean_of(per_pair[:len(cands)])
    results["spider"] = _mean_of((results["cider_d"][1] + results["spice"][1]) / 2)
    if beams:
        beam_spice = per_pair[len(cands):].reshape(len(cands), k)
        # One CIDEr-D per beam rank, as aac-metrics scores them: the same references, so the same weights.
        beam_cider = np.stack([CiderD().compute([clip[j] for clip in beams], refs)[1] for j in range(k)], axis=1)
        results["spider_max"] = _mean_of(((beam_cider + beam_spice) / 2).max(axis=1))


def _tokenize(ids: list[str], predictions: Mapping[str, str], references: Mapping[str, Sequence[str]],
              candidates: Mapping[str, Sequence[str]] | None = None
              ) -> tuple[list[str], list[list[str]], list[list[str]] | None]:
    """Tokenised candidates, reference lists and beam candidates (None without ``candidates``).

    Predictions and references are the two blocks pycocoevalcap tokenises; all beam candidates,
    flattened in id order, are a third block (their JVM runs beside the other two).
    """
    beams_flat = [beam for i in ids for beam in candidates[i]] if candidates is not None else []
    cands, flat, beam_tokens = tokenize([predictions[i] for i in ids], [r for i in ids for r in references[i]],
                                        beams_flat)
    rest = iter(flat)
    refs = [list(islice(rest, len(references[i]))) for i in ids]
    if candidates is None:
        return cands, refs, None
    beam_rest = iter(beam_tokens)
    return cands, refs, [list(islice(beam_rest, len(candidates[i]))) for i in ids]


def _mean_of(per_item: np.ndarray) -> tuple[float, np.ndarray]:
    return float(np.mean(per_item)), per_item


def _check_candidates(candidates: Mapping[str, Sequence[str]], ids: list[str]) -> None:
    """Every id has the same number (>= 1) of non-empty beam candidates, and no other id has any."""
    counts = set()
    for key in ids:
        beams = candidates.get(key)
        if beams is None:
            raise InputError(f"id {key!r} has a prediction but no beam candidates for SPIDEr-max")
        if isinstance(beams, str) or not beams:
            raise InputError(f"id {key!r} needs a non-empty list of beam candidates")
        for n, beam in enumerate(beams, start=1):
            if not isinstance(beam, str) or not beam.strip():
                raise InputError(f"beam candidate {n} of id {key!r} is empty")
        counts.add(len(beams))
    if len(counts) > 1:
        raise InputError(f"SPIDEr-max needs the same number of beam candidates for every id (found {sorted(counts)})")
    known = set(ids)
    extra = next((key for key in candidates if key not in known), None)
    if extra is not None:
        raise InputError(f"id {extra!r} has beam candidates but no prediction")


def _check_inputs(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> list[str]:
    """Ids in prediction order, after checking both sides describe the same non-empty captions."""
    if not predictions:
        raise InputError("no predictions to evaluate")
    for key, text in predictions.items():
        if key not in references:
            raise InputError(f"id {key!r} has a prediction but no references")
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"the prediction for id {key!r} is empty")
        refs = references[key]
        if isinstance(refs, str) or not refs:
            raise InputError(f"id {key!r} needs a non-empty list of reference captions")
        for n, ref in enumerate(refs, start=1):
            if not isinstance(ref, str) or not ref.strip():
                raise InputError(f"reference {n} of id {key!r} is empty")
    for key in references:
        if key not in predictions:
            raise InputError(f"id {key!r} has references but no prediction")
    return list(predictions)


def load_json_mapping(path: Path, value_type: type) -> dict:
    """A UTF-8 JSON object file whose values are all ``value_type``: str captions, or lists
    of str references. Text must be valid Unicode (a JSON ``\\ud800`` escape is not)."""
    label = shown(path)
    try:
        data = json.loads(read_utf8(Path(path)))
    except json.JSONDecodeError as exc:
        raise InputError(f"{label} is not valid JSON ({exc})") from None
    except RecursionError:
        raise InputError(f"{label} is nested too deeply to be an {{id: {value_type.__name__}}} object") from None
    if not isinstance(data, dict):
        raise InputError(f"{label} must hold a JSON object {{id: {value_type.__name__}}}, not {type(data).__name__}")
    for key, value in data.items():
        if not isinstance(value, value_type):
            raise InputError(f"{label}: value of {key!r} must be a {value_type.__name__}, got {type(value).__name__}")
        texts = value if isinstance(value, list) else [value]
        for text in texts:
            if not isinstance(text, str):
                raise InputError(f"{label}: the references of {key!r} must be strings, got {json.dumps(text)[:40]}")
        for text in [key, *texts]:
            if not text.isascii() and any("\ud800" <= c <= "\udfff" for c in text):
                raise InputError(f"{label}: {text!r} holds a lone surrogate (an unpaired \\ud800-\\udfff escape): "
                                 "write the character itself")
    return data


def install_assets(from_dir: Path, assets_dir: Path) -> list[Path]:
    """Copy the metric assets found under ``from_dir`` into ``assets_dir``; return the installed paths.

    Recognised anywhere below ``from_dir``, by exact name: the two Stanford CoreNLP 3.6.0 jars
    for SPICE (from the unpacked ``stanford-corenlp-full-2015-12-09.zip`` or from Maven) and,
    for SPIDEr-FL, FENSE's ``echecker_clotho_audiocaps_base.ckpt`` with a ``bert-base-uncased``
    folder (``config.json``, ``vocab.txt``), and for FENSE's similarity a sentence-transformers
    ``paraphrase-TinyBERT-L6-v2`` folder (with ``modules.json``). Each set must be complete and
    is checked (jars: readable zips holding CoreNLP classes; checkpoint: FENSE's published
    SHA-256; the SBERT folder has no published hash -- its content hash is recorded with every
    score instead) before anything is copied; copies land under a temporary name and are
    renamed into place.
    """
    source = Path(from_dir)
    if not source.is_dir():
        raise InputError(f"{source}: not a directory")
    jars = {name: _find(source, name, Path.is_file) for name in spice.CORENLP_JARS}
    fense_files = {fense.CHECKPOINT: _find(source, fense.CHECKPOINT, Path.is_file),
                   f"{fense.BERT_DIR}/ ({', '.join(fense.BERT_FILES)})": _find(source, fense.BERT_DIR, _is_bert_dir)}
    plan: list[tuple[Path, Path]] = []
    if _complete(source, jars, "SPICE"):
        for name, path in jars.items():
            _check_jar(path, spice.CORENLP_JARS[name])
            plan.append((path, spice.spice_lib_dir(assets_dir) / name))
    if _complete(source, fense_files, "SPIDEr-FL"):
        checkpoint, bert = fense_files.values()
        _check_sha256(checkpoint, fense.CHECKPOINT_SHA256)
        target = fense.fense_dir(assets_dir)
        plan += [(checkpoint, target / fense.CHECKPOINT), (bert, target / fense.BERT_DIR)]
    sbert_folder = _find(source, sbert.FENSE_SBERT, sbert.is_sbert_dir)
    if sbert_folder is not None:
        plan.append((sbert_folder, sbert.sbert_dir(assets_dir)))
    if not plan:
        wanted = ", ".join([*jars, *fense_files, f"{sbert.FENSE_SBERT}/ ({sbert.MODEL_MARKER})"])
        raise InputError(f"{source}: no caption-metric assets found (looked for {wanted})")
    for path, dest in plan:
        _copy(path, dest)
    return [dest for _, dest in plan]


def _find(root: Path, name: str, accept) -> Path | None:
    """First path (sorted) named ``name`` below ``root`` that ``accept`` approves."""
    return next((path for path in sorted(root.rglob(name)) if accept(path)), None)


def _is_bert_dir(path: Path) -> bool:
    return path.is_dir() and all((path / name).is_file() for name in fense.BERT_FILES)


def _complete(source: Path, found: dict[str, Path | None], metric: str) -> bool:
    """True when every file of an asset set was found, False when none was; a partial set is an error."""
    missing = [name for name, path in found.items() if path is None]
    if missing and len(missing) < len(found):
        raise InputError(f"{source}: {metric} needs {', '.join(found)} but {', '.join(missing)} is not there")
    return not missing


def _check_jar(path: Path, marker: str) -> None:
    try:
        with zipfile.ZipFile(path) as jar:
            names = jar.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{path}: not a readable jar ({exc})") from None
    if not any(name.startswith(marker) for name in names):
        raise InputError(f"{path}: no {marker} inside; is this really {path.name} from Stanford CoreNLP 3.6.0?")


def _check_sha256(path: Path, expected: str) -> None:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        raise InputError(f"{path}: SHA-256 {digest.hexdigest()} is not FENSE's published {expected}")


def _copy(path: Path, dest: Path) -> None:
    """Copy a file or folder to ``dest`` via a temporary sibling, so ``dest`` is never half-written."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    _remove(partial)
    if path.is_dir():
        shutil.copytree(path, partial)
        _remove(dest)  # os.replace cannot replace a non-empty folder
    else:
        shutil.copyfile(path, partial)
    os.replace(partial, dest)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
