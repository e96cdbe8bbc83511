"""Caption metrics: METEOR, CIDEr-D, SPICE, SPIDEr and SPIDEr-FL as the DCASE challenge computes them.

Candidates and references are PTB-tokenised once, as pycocoevalcap and aac-metrics do it
(:mod:`aacbatch.evaluate.ptb`), and the same tokens go to every metric. Each metric is a small
class with one ``compute(candidates, references) -> (corpus, per_item)`` entry point, so they
can be checked one by one against pycocoevalcap's own classes:

* METEOR 1.5 -- :mod:`aacbatch.evaluate.meteor` (the jar's corpus score, not a mean);
* CIDEr-D -- :mod:`aacbatch.evaluate.cider` (vectorised, equal to pycocoevalcap's ``Cider``);
* SPICE -- :mod:`aacbatch.evaluate.spice` (needs user-installed CoreNLP 3.6.0 jars);
* SPIDEr = (CIDEr-D + SPICE) / 2 per item, and its mean;
* SPIDEr-FL = SPIDEr x (1 - 0.9 [fluency error]) per item with FENSE's detector
  (:mod:`aacbatch.evaluate.fense`), and its mean.

A metric whose assets are missing comes back as None with a one-line reason, never estimated.
:func:`install_assets` copies the user's asset files into an assets directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from itertools import islice
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aacbatch.config import Settings
from aacbatch.errors import InputError, shown
from aacbatch.evaluate import fense, spice
from aacbatch.evaluate.cider import CiderD
from aacbatch.evaluate.meteor import shared_meteor
from aacbatch.evaluate.ptb import tokenize
from aacbatch.textfiles import read_utf8

METRICS = ("meteor", "cider_d", "spice", "spider", "spider_fl")
FLUENCY_PENALTY = 0.9
# What each metric needs computed first (transitively closed).
_NEEDS = {"spider": ("cider_d", "spice"), "spider_fl": ("cider_d", "spice", "spider")}


@dataclass(frozen=True)
class CaptionScores:
    """Corpus values for the requested metrics (None when unavailable), why, and per-item values.

    ``per_item[metric][id]`` exists for every available metric and every id, in input order.
    """

    corpus: dict[str, float | None]
    reasons: dict[str, str]
    per_item: dict[str, dict[str, float]]


@dataclass(frozen=True)
class CaptionEvaluation:
    """Generated captions (clip id → text) scored with every caption metric: corpus values
    (None where an asset is missing) and why."""

    metrics: dict[str, float | None]
    reasons: dict[str, str]
    captions: dict[str, str]

    @classmethod
    def score(cls, captions: dict[str, str], references: dict[str, list[str]], assets_dir: Path) -> "CaptionEvaluation":
        empty = [k for k, v in captions.items() if not v.strip()]
        if empty:  # a model can emit END first; score it as the empty caption it is, visibly
            raise InputError(f"the captioner produced an empty caption for {len(empty)} clip(s) (e.g. {empty[0]}): "
                             "train it longer or check its inputs")
        scores = caption_metrics(captions, references, assets_dir=assets_dir)
        return cls(scores.corpus, scores.reasons, captions)


def caption_metrics(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]], *,
                    assets_dir: Path | None = None, metrics: Sequence[str] = METRICS) -> CaptionScores:
    """Score one caption per id against that id's references.

    ``assets_dir`` defaults to ``<AACBATCH_HOME>/assets``. Raises :class:`InputError` for an
    unknown metric, an empty prediction or reference, an empty reference list, or an id that
    is not on both sides.
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise InputError(f"unknown caption metric {unknown[0]!r}: choose from {', '.join(METRICS)}")
    ids = _check_inputs(predictions, references)
    assets = Path(assets_dir) if assets_dir is not None else Settings.resolve().home / "assets"
    wanted = {dep for m in metrics for dep in (m, *_NEEDS.get(m, ()))}

    results: dict[str, tuple[float, np.ndarray]] = {}
    reasons: dict[str, str] = {}
    spice_scorer = spice.Spice(assets)
    if "spice" in wanted and (reason := spice_scorer.missing()):
        reasons["spice"] = reasons["spider"] = reasons["spider_fl"] = reason
    fluency = fense.FluencyErrors(assets)
    if "spider_fl" in wanted and "spider_fl" not in reasons and (reason := fluency.missing()):
        reasons["spider_fl"] = reason

    with ExitStack() as stack:
        # METEOR's JVM starts first and loads its paraphrase table while the tokenizer runs.
        meteor = stack.enter_context(shared_meteor()) if "meteor" in wanted else None
        cands, refs = _tokenize(ids, predictions, references)
        if meteor is not None:
            results["meteor"] = meteor.compute(cands, refs)
    if "cider_d" in wanted:
        results["cider_d"] = CiderD().compute(cands, refs)
    if "spice" in wanted and "spice" not in reasons:
        results["spice"] = spice_scorer.compute(cands, refs)
        results["spider"] = _mean_of((results["cider_d"][1] + results["spice"][1]) / 2)
        if "spider_fl" in wanted and "spider_fl" not in reasons:
            errors = fluency.compute([predictions[i] for i in ids])
            results["spider_fl"] = _mean_of(results["spider"][1] * (1.0 - FLUENCY_PENALTY * errors))
    return CaptionScores(
        corpus={m: results[m][0] if m in results else None for m in metrics},
        reasons={m: reasons[m] for m in metrics if m in reasons},
        per_item={m: dict(zip(ids, map(float, results[m][1]))) for m in metrics if m in results},
    )


def _tokenize(ids: list[str], predictions: Mapping[str, str],
              references: Mapping[str, Sequence[str]]) -> tuple[list[str], list[list[str]]]:
    """Tokenised candidates and reference lists, in the two blocks pycocoevalcap tokenises."""
    cands, flat = tokenize([predictions[i] for i in ids], [r for i in ids for r in references[i]])
    rest = iter(flat)
    return cands, [list(islice(rest, len(references[i]))) for i in ids]


def _mean_of(per_item: np.ndarray) -> tuple[float, np.ndarray]:
    return float(np.mean(per_item)), per_item


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
    folder (``config.json``, ``vocab.txt``). Each set must be complete and is checked (jars:
    readable zips holding CoreNLP classes; checkpoint: FENSE's published SHA-256) before
    anything is copied; copies land under a temporary name and are renamed into place.
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
    if not plan:
        wanted = ", ".join([*jars, *fense_files])
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
