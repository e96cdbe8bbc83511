"""Content hashes: what fingerprints, model identities and checkpoint checks are made of.

Every identity aacbatch records is a hash of *content*, never of a location, so a moved
model folder or a copied workspace stays valid while changed bytes never go unnoticed.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from pathlib import Path

_CHUNK = 1 << 20


def fingerprint(*parts: object) -> str:
    """Stable SHA-256 of JSON-serialisable parts (specs, manifests, model identities, queries)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of one file's bytes (a checkpoint, a jar), memoised per (real path, size,
    mtime) for the life of the process: a 400 MB models jar is read once, not per use."""
    status = os.stat(path)
    return _hash_once(os.path.realpath(path), status.st_size, status.st_mtime_ns)


@cache
def _hash_once(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def path_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, or of a folder's listing: one line ``<relative posix
    path>\\0<file SHA-256>\\n`` per file in sorted path order (renaming, adding or changing any
    file changes it)."""
    path = Path(path)
    if not path.is_dir():
        return file_sha256(path)
    listing = hashlib.sha256()
    for file in sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: p.relative_to(path).as_posix()):
        listing.update(f"{file.relative_to(path).as_posix()}\0{file_sha256(file)}\n".encode("utf-8"))
    return listing.hexdigest()


def content_sha256(root: Path, files: list[Path]) -> str:
    """SHA-256 over (relative name, size, bytes) of ``files`` in sorted name order.

    Names are part of the hash (a renamed vocabulary is a different model) but the folder's
    location is not, so moving a model folder keeps every cache built from it valid.
    """
    digest = hashlib.sha256()
    for name, file in sorted((f.relative_to(root).as_posix(), f) for f in files):
        digest.update(f"{name}\0{file.stat().st_size}\0".encode())
        with file.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()
