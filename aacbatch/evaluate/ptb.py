"""PTB tokenisation exactly as pycocoevalcap does it, plus the Java plumbing every caption metric shares.

Caption metrics are only comparable across papers when candidates and references go through
pycocoevalcap's preprocessing: the Stanford PTBTokenizer of the CoreNLP 3.4.1 jar it ships
(``-preserveLines -lowerCase``) followed by removal of a fixed list of punctuation tokens.
We run that same jar and drop the same tokens, but write the input file to a temporary
directory of ours instead of into site-packages (which may be read-only).

The tokenizer is not a per-line function: its lexer looks ahead across line ends, so a caption
ending in a letter-period sequence ("... by a.") keeps or splits its period depending on how the
*next* caption starts (verified with the 3.4.1 jar: "A." followed by the line "The x." gives
"a .", followed by a last line "The" it gives "a."). Tokenising distinct texts once, or candidates and references in
one file, therefore changes a few captions. To match pycocoevalcap (and aac-metrics, the DCASE
baseline's evaluator) exactly, :func:`tokenize` takes the same blocks they tokenise -- all
references flattened in item order, and all candidates in item order -- each in its own JVM,
the JVMs running concurrently.

One deliberate divergence: pycocoevalcap only flattens ``\n``, but the lexer also breaks lines
at ``\r``, U+2028/U+2029, vertical tab and form feed, which silently shifts every later caption
onto the wrong id. We flatten all of them and check the line count.

The Java helpers live here because the tokenizer is the one JVM step every evaluation runs;
METEOR and SPICE reuse them. Java always runs with an English locale: METEOR formats its
scores with the default locale and would print ``0,25`` under e.g. a German one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from importlib.util import find_spec
from pathlib import Path

from aacbatch.errors import AacbatchError

TOKENIZER_JAR = "tokenizer/stanford-corenlp-3.4.1.jar"
TOKENIZER_CLASS = "edu.stanford.nlp.process.PTBTokenizer"
# pycocoevalcap's list, verbatim. Its bracket tokens are upper-case while -lowerCase yields
# "-lrb-", so brackets survive in pycocoevalcap's output, and therefore in ours.
PUNCTUATION = frozenset({"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-",
                         ".", "?", "!", ",", ":", "-", "--", "...", ";"})
# Everything the PTB lexer treats as a line break (besides "\n").
_LINE_BREAKS = re.compile("[\r\n\u2028\u2029\x0b\x0c]")
_JAVA_PROPERTIES = ("-Duser.language=en", "-Duser.country=US", "-Dfile.encoding=UTF-8")


def pycocoevalcap_file(relative: str) -> Path:
    """Path of a file shipped inside the installed pycocoevalcap package (read, never written)."""
    spec = find_spec("pycocoevalcap")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        path = Path(root) / relative
        if path.is_file():
            return path
    raise AacbatchError(f"pycocoevalcap file {relative} not found: reinstall aacbatch (it depends on pycocoevalcap>=1.2)")


def java_command(*args: str, heap: str | None = None) -> list[str]:
    """``java`` with the fixed locale/encoding properties, an optional ``-Xmx`` heap, then ``args``."""
    java = shutil.which("java")
    if java is None:
        raise AacbatchError("java not found on PATH: caption metrics (PTB tokenizer, METEOR, SPICE) "
                            "need a Java runtime >= 11")
    return [java, *([f"-Xmx{heap}"] if heap else []), *_JAVA_PROPERTIES, *args]


@cache
def java_version() -> str:
    """Version string of the ``java`` on PATH ("17.0.15", "1.8.0_392").

    Read from the runtime's ``release`` file when it has one (no JVM start: scoring records
    it with every caption metric), else from ``java -version``.
    """
    release = Path(os.path.realpath(java_command()[0])).parent.parent / "release"
    if release.is_file():
        found = re.search(r'^JAVA_VERSION="(\d[^"]*)"', release.read_text(encoding="utf-8", errors="replace"), re.M)
        if found:
            return found.group(1)
    out = subprocess.run(java_command("-version"), capture_output=True, text=True).stderr
    found = re.search(r'version "([^"]+)"', out)
    if not found or not re.match(r"\d+", found.group(1)):
        raise AacbatchError(f"could not read the Java version from `java -version`: {out.strip()[:200]!r}")
    return found.group(1)


def java_major_version() -> int:
    """Major version of the ``java`` on PATH (8 for "1.8.0_x", 17 for "17.0.15")."""
    parts = re.findall(r"\d+", java_version())
    major, minor = int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    return minor if major == 1 else major


def run_java(cmd: Sequence[str], *, what: str, cwd: Path | None = None) -> str:
    """Run a Java command to completion and return its stdout; a failure names ``what`` and shows stderr's tail."""
    done = subprocess.run(list(cmd), cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True)
    if done.returncode != 0:
        raise AacbatchError(f"{what} failed (java exit {done.returncode}): {stderr_tail(done.stderr)}")
    return done.stdout.decode("utf-8")


def stderr_tail(stderr: bytes, lines: int = 3) -> str:
    """The last few lines of a JVM's stderr without stack frames, on one line, for an error message."""
    text = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    kept = [line for line in text if line and not line.startswith(("at ", "... "))]
    return " | ".join(kept[-lines:]) or "no error output"


def strip_punctuation(line: str) -> str:
    """Drop pycocoevalcap's punctuation tokens from one tokenizer output line (same splitting, same joining)."""
    return " ".join(token for token in line.rstrip().split(" ") if token not in PUNCTUATION)


_MEMO: OrderedDict[tuple[str, ...], tuple[str, ...]] = OrderedDict()
_MEMO_BLOCKS = 32


def tokenize(*blocks: Sequence[str]) -> list[list[str]]:
    """PTB-tokenised, lower-cased, punctuation-free captions, block by block.

    Each block is tokenised exactly as one call of pycocoevalcap's ``PTBTokenizer`` on the same
    captions in the same order would (see the module docstring for why order matters). The
    blocks' JVMs run concurrently. A block seen before in this process (the same training
    captions or references, tokenised again by the next run or epoch) is answered from memory:
    same block, same output, no JVM.
    """
    keys = [tuple(block) for block in blocks]
    todo = [k for k in dict.fromkeys(keys) if k and k not in _MEMO]
    for key, tokens in zip(todo, _run_tokenizer(todo) if todo else []):
        _MEMO[key] = tuple(tokens)
        while len(_MEMO) > _MEMO_BLOCKS:
            _MEMO.popitem(last=False)
    return [list(_MEMO[k]) if k else [] for k in keys]


def _run_tokenizer(blocks: list[tuple[str, ...]]) -> list[list[str]]:
    jar = pycocoevalcap_file(TOKENIZER_JAR)
    with tempfile.TemporaryDirectory(prefix="aacbatch-ptb-") as tmp:
        runs = []
        for n, block in enumerate(blocks):
            source = Path(tmp) / f"captions{n}.txt"
            source.write_text("\n".join(_LINE_BREAKS.sub(" ", text) for text in block), encoding="utf-8")
            cmd = java_command("-cp", os.fspath(jar), TOKENIZER_CLASS, "-preserveLines", "-lowerCase", source.name)
            runs.append(subprocess.Popen(cmd, cwd=tmp, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE))
        with ThreadPoolExecutor(len(runs)) as pool:  # drain all pipes at once: no JVM waits on another
            outputs = list(pool.map(lambda run: run.communicate(), runs))
    tokenised = []
    for block, run, (stdout, stderr) in zip(blocks, runs, outputs):
        if run.returncode != 0:
            raise AacbatchError(f"PTB tokenizer failed (java exit {run.returncode}): {stderr_tail(stderr)}")
        lines = stdout.decode("utf-8").split("\n")
        if len(lines) != len(block):
            raise AacbatchError(f"PTB tokenizer returned {len(lines)} lines for {len(block)} captions")
        tokenised.append([strip_punctuation(line) for line in lines])
    return tokenised
