"""SPICE 1.0 through pycocoevalcap's ``spice-1.0.jar``, with user-supplied Stanford CoreNLP 3.6.0 jars.

The CoreNLP jars SPICE parses with are not on PyPI or Debian and pycocoevalcap downloads them
into its own package directory; here the user installs them once into
``<assets>/spice/lib/`` (:func:`aacbatch.evaluate.captions.install_assets`). Without them SPICE
is reported as unavailable with the reason, never estimated.

Running the jar as pycocoevalcap does (``java -jar spice-1.0.jar in.json -out out.json``) fails on
current Java twice over, so we differ in how it is launched, not in what it computes:

* Java >= 16 forbids the reflection SPICE's cache serialiser does into JDK classes
  (``InaccessibleObjectException``): we pass ``--add-opens`` for those packages;
* ``-out`` pretty-prints the results through the JavaScript engine, which Java removed in
  version 15, so it dies after scoring. A small Java driver (:data:`DRIVER_SOURCE`, run with
  Java's single-file source launcher, Java >= 11) calls SPICE's own ``SpiceScorer.scoreBatch``
  and writes its results with SPICE's own JSON serialiser instead.

The classpath names spice-1.0.jar where pycocoevalcap installed it (its manifest pulls in the
other libraries from the ``lib/`` folder beside it) plus our two CoreNLP jars, so nothing is
copied or written into site-packages. Items go in as integer ids (their input position) and
come back keyed by them: unlike pycocoevalcap's ``Spice``, which sorts ids, scores stay in
input order.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from aacbatch.evaluate.ptb import java_command, java_major_version, pycocoevalcap_file, run_java

SPICE_JAR = "spice/spice-1.0.jar"
# CoreNLP jar -> an entry every genuine copy holds (SPICE's parser fails without it), which
# catches a renamed jar of another CoreNLP release or a truncated download.
CORENLP_JARS = {
    "stanford-corenlp-3.6.0.jar": "edu/stanford/nlp/semgraph/semgrex/SemgrexPattern.class",
    "stanford-corenlp-3.6.0-models.jar": "edu/stanford/nlp/models/",
}
INSTALL_HINT = "run `aacbatch metrics install --from DIR`"
MIN_JAVA = 11  # single-file source launcher
# JDK packages SPICE (its FST-serialised LMDB cache, CoreNLP) reflects into.
OPENS = ("java.base/java.lang", "java.base/java.lang.reflect", "java.base/java.util", "java.base/java.util.concurrent",
         "java.base/java.util.concurrent.atomic", "java.base/java.util.regex", "java.base/java.io",
         "java.base/java.nio", "java.base/java.net", "java.base/java.text", "java.base/java.math")
DRIVER_SOURCE = """\
import edu.anu.spice.SpiceArguments;
import edu.anu.spice.SpiceScorer;
import java.lang.reflect.Constructor;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Arrays;

/** aacbatch: SpiceScorer.scoreBatch, then its per-item JSON written without the removed JavaScript engine. */
public class SpiceJson {
    public static void main(String[] argv) throws Exception {
        Constructor<SpiceArguments> parse = SpiceArguments.class.getDeclaredConstructor(String[].class);
        parse.setAccessible(true);
        SpiceArguments args = parse.newInstance((Object) Arrays.copyOfRange(argv, 1, argv.length));
        Constructor<SpiceScorer> create = SpiceScorer.class.getDeclaredConstructor();
        create.setAccessible(true);
        SpiceScorer scorer = create.newInstance();
        scorer.scoreBatch(args);
        Files.write(Paths.get(argv[0]), scorer.stats.toJSONString().getBytes(StandardCharsets.UTF_8));
    }
}
"""


def spice_lib_dir(assets_dir: Path) -> Path:
    """Where the CoreNLP 3.6.0 jars live inside an assets directory."""
    return Path(assets_dir) / "spice" / "lib"


class Spice:
    """SPICE F-score per item (``All`` tuples) and their mean, as pycocoevalcap reports it."""

    def __init__(self, assets_dir: Path, *, cache_dir: Path | None = None, threads: int | None = None,
                 heap: str = "8G") -> None:
        self.lib = spice_lib_dir(assets_dir)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else Path(assets_dir) / "spice" / "cache"
        self.threads = threads or os.cpu_count() or 1
        self.heap = heap

    def missing(self) -> str | None:
        """Why SPICE cannot run here (missing jars, old Java), or None when it can."""
        absent = [name for name in CORENLP_JARS if not (self.lib / name).is_file()]
        if absent:
            return f"SPICE needs the Stanford CoreNLP 3.6.0 jars: {INSTALL_HINT}"  # short: reports show it per cell
        if java_major_version() < MIN_JAVA:
            return f"SPICE needs Java >= {MIN_JAVA} here (found Java {java_major_version()})"
        return None

    def compute(self, candidates: Sequence[str], references: Sequence[Sequence[str]]) -> tuple[float, np.ndarray]:
        """(mean F-score, per-item F-scores; NaN where SPICE reports none) for tokenised captions."""
        items = [{"image_id": i, "test": cand, "refs": list(refs)}
                 for i, (cand, refs) in enumerate(zip(candidates, references))]
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="aacbatch-spice-") as tmp:
            work = Path(tmp)
            source, inputs, output = work / "SpiceJson.java", work / "spice_in.json", work / "spice_out.json"
            source.write_text(DRIVER_SOURCE, encoding="utf-8")
            inputs.write_text(json.dumps(items), encoding="ascii")  # ASCII escapes: SPICE reads with the default charset
            run_java(self._command(source, inputs, output), what="SPICE", cwd=work)
            results = json.loads(output.read_text(encoding="utf-8"))
        by_id = {item["image_id"]: item["scores"]["All"]["f"] for item in results}
        per_item = np.array([np.nan if by_id[i] is None else float(by_id[i]) for i in range(len(items))])
        return float(per_item.mean()), per_item

    def _command(self, source: Path, inputs: Path, output: Path) -> list[str]:
        classpath = os.pathsep.join(os.fspath(jar) for jar in
                                    [pycocoevalcap_file(SPICE_JAR), *(self.lib / name for name in CORENLP_JARS)])
        opens = [arg for package in OPENS for arg in ("--add-opens", f"{package}=ALL-UNNAMED")]
        return java_command(*opens, "-cp", classpath, os.fspath(source), os.fspath(output), os.fspath(inputs),
                            "-cache", os.fspath(self.cache_dir), "-threads", str(self.threads), "-silent",
                            heap=self.heap)
