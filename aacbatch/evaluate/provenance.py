"""Where a score came from: the implementation, its version, the exact files it ran and the tokenisation.

Two numbers called "METEOR" are only comparable when the same code ran on the same tokens
with the same jar and data. Each score therefore carries a JSON-able record:

* ``implementation`` -- the class or jar that computed it, in words;
* ``versions`` -- aacbatch's version and git revision (None outside a checkout), the versions
  of the Python packages involved (pycocoevalcap, sentence-transformers, transformers, torch),
  and the Java version for the metrics that run a JVM (every caption metric does: tokenising);
* ``sha256`` -- the SHA-256 of every jar, data file, checkpoint and model folder used, and of
  the pycocoevalcap source files whose code is run as-is (BLEU, ROUGE-L);
* ``tokenization`` -- what the candidates and references went through first;
* ``model`` -- for the Sentence-BERT metrics, the folder name of the model used.

A folder's SHA-256 is that of its listing: one line ``<relative posix path>\\0<file SHA-256>\\n``
per file, in sorted path order, so renaming, adding or changing any file changes it. Hashes
are memoised per (path, size, mtime) for the life of the process: a 400 MB CoreNLP models jar
is read once, not once per scored caption set.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import aacbatch
from aacbatch.evaluate import fense, spice
from aacbatch.evaluate.meteor import METEOR_DATA, METEOR_JAR
from aacbatch.evaluate.ptb import TOKENIZER_JAR, java_version, pycocoevalcap_file
from aacbatch.evaluate.sbert import sbert_dir
from aacbatch.hashing import path_sha256
from aacbatch.resources import code_revision

TOKENIZATION = ("PTB: pycocoevalcap's stanford-corenlp-3.4.1.jar PTBTokenizer -preserveLines -lowerCase, then "
                "pycocoevalcap's punctuation tokens removed; candidates and references tokenised as two blocks, "
                "as pycocoevalcap and aac-metrics do; every metric reads these tokens")
# What each metric is made of; a metric's record is the union of its parts'.
PARTS = {
    **{f"bleu_{n}": ("bleu",) for n in range(1, 5)},
    "rouge_l": ("rouge",),
    "meteor": ("meteor",),
    "cider_d": ("cider",),
    "spice": ("spice",),
    "spider": ("cider", "spice"),
    "spider_fl": ("cider", "spice", "echecker"),
    "spider_max": ("cider", "spice"),
    "sbert_sim": ("sbert",),
    "fense": ("sbert", "echecker"),
    "vocab": ("vocab",),
}
_IMPLEMENTATION = {
    "bleu": "pycocoevalcap BleuScorer (option='closest'), run as-is",
    "rouge": "pycocoevalcap Rouge.calc_score (beta 1.2), run as-is",
    "meteor": "METEOR 1.5 (pycocoevalcap's meteor-1.5.jar, -l en -norm) over aacbatch's stdio client",
    "cider": "aacbatch.evaluate.cider.CiderD (vectorised CIDEr-D, equal to pycocoevalcap Cider)",
    "spice": "SPICE 1.0 (pycocoevalcap's spice-1.0.jar + CoreNLP 3.6.0) via aacbatch's SpiceJson driver",
    "echecker": "FENSE fluency-error detector (echecker_clotho_audiocaps_base, threshold 0.9, penalty 0.9)",
    "sbert": "sentence-transformers mean cosine of candidate and reference embeddings",
    "vocab": "aacbatch: distinct whitespace tokens of the PTB-tokenised candidates",
}
_PACKAGES = {
    "bleu": ("pycocoevalcap",), "rouge": ("pycocoevalcap",), "meteor": ("pycocoevalcap",),
    "spice": ("pycocoevalcap",), "echecker": ("torch", "transformers"), "sbert": ("sentence-transformers", "torch"),
}


def caption_provenance(metrics: Sequence[str], *, assets_dir: Path, sbert_model: Path | None = None) -> dict[str, dict]:
    """One provenance record per caption metric in ``metrics``, for files as they are now.

    ``assets_dir`` holds the user's SPICE jars and FENSE files; ``sbert_model`` is the
    Sentence-BERT folder used (default: FENSE's under ``assets_dir``). Files that are absent
    are simply not listed (the metric is then unavailable, with its reason, anyway).
    """
    sbert_folder = Path(sbert_model) if sbert_model is not None else sbert_dir(assets_dir)
    common_files = {"stanford-corenlp-3.4.1.jar": pycocoevalcap_file(TOKENIZER_JAR)}
    records = {}
    for metric in metrics:
        parts = PARTS[metric]
        files = dict(common_files)
        for part in parts:
            files.update(_files(part, Path(assets_dir), sbert_folder))
        versions = {"aacbatch": aacbatch.__version__, "aacbatch_git": code_revision(), "java": java_version()}
        versions.update({name: package_version(name) for part in parts for name in _PACKAGES.get(part, ())})
        record = {"implementation": [_IMPLEMENTATION[part] for part in parts], "versions": versions,
                  "sha256": {label: path_sha256(path) for label, path in files.items() if path.exists()},
                  "tokenization": TOKENIZATION}
        if "sbert" in parts:
            record["model"] = sbert_folder.name
        records[metric] = record
    return records


def retrieval_provenance() -> dict:
    """The record of the retrieval metrics: pure aacbatch code, no files, no tokenisation."""
    return {"implementation": ["aacbatch.evaluate.retrieval (pessimistic ties; a2t/ = DCASE definition)"],
            "versions": {"aacbatch": aacbatch.__version__, "aacbatch_git": code_revision()}, "sha256": {}}


def _files(part: str, assets: Path, sbert_folder: Path) -> dict[str, Path]:
    """Label -> path of every file or folder ``part`` runs."""
    if part == "bleu":
        return {"pycocoevalcap/bleu/bleu_scorer.py": pycocoevalcap_file("bleu/bleu_scorer.py")}
    if part == "rouge":
        return {"pycocoevalcap/rouge/rouge.py": pycocoevalcap_file("rouge/rouge.py")}
    if part == "meteor":
        return {"meteor-1.5.jar": pycocoevalcap_file(METEOR_JAR), "paraphrase-en.gz": pycocoevalcap_file(METEOR_DATA)}
    if part == "spice":
        return {"spice-1.0.jar": pycocoevalcap_file(spice.SPICE_JAR),
                **{name: spice.spice_lib_dir(assets) / name for name in spice.CORENLP_JARS}}
    if part == "echecker":
        return {fense.CHECKPOINT: fense.fense_dir(assets) / fense.CHECKPOINT,
                f"{fense.BERT_DIR}/": fense.fense_dir(assets) / fense.BERT_DIR}
    if part == "sbert":
        return {f"{sbert_folder.name}/": sbert_folder}
    return {}


def package_version(name: str) -> str | None:
    """Installed version of a distribution, None when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
