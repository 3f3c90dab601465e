"""A model's files on disk, and a key for "exactly these files, as they are now" (path, size and modification
time), under which what was learnt about them (their sha256, their measured precision) is remembered."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from ..atomic import write_atomic

log = logging.getLogger(__name__)


def model_files(location: Path) -> list[Path]:
    """The checkpoint file itself, or every file under a diffusers folder in sorted order."""
    return [location] if location.is_file() else sorted(p for p in location.rglob("*") if p.is_file())


def stat_key(files: list[Path], *extra: str) -> str:
    """A hex digest that changes when any file is replaced, resized or touched, or when `extra` changes."""
    key = hashlib.sha256()
    for file in files:
        st = file.stat()
        key.update(f"{file.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    for value in extra:
        key.update(f"{value}\0".encode())
    return key.hexdigest()


def file_sha256(path: Path) -> str:
    """A file's plain sha256 (what a download page publishes), remembered as content_hash's is."""
    return _remembered_hash([path], lambda digest, file: None, "plain")


def content_hash(location: Path) -> str:
    """sha256 over a model's files in sorted order (their paths inside a folder, then their bytes). Computed once
    for a given set of files and remembered in the cache directory under their paths, sizes and modification
    times (hashing a 4 GB model takes seconds, as InvokeAI 2.3 knew when it kept a .sha256 beside each checkpoint)."""
    return _remembered_hash(model_files(location), lambda digest, file: digest.update(
        str(file.relative_to(location) if file != location else file.name).encode()))


def _remembered_hash(files: list[Path], name, *kind: str) -> str:
    """sha256 over `files` (each preceded by what `name(digest, file)` adds), or the one remembered for them."""
    remembered = _hash_record(files, *kind)
    try:
        known = remembered.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        known = ""
    if len(known) == 64 and all(ch in "0123456789abcdef" for ch in known):
        return known
    digest = hashlib.sha256()
    for file in files:
        name(digest, file)
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    _remember(remembered, digest.hexdigest())
    return digest.hexdigest()


def _hash_record(files: list[Path], *kind: str) -> Path:
    """Where the hash of exactly these files, as they are now, is remembered."""
    from ..paths import cache_dir

    return cache_dir() / "model-hashes" / stat_key(files, *kind)


def _remember(path: Path, value: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, value + "\n")
    except OSError:  # a read-only cache only costs the next session the hashing again
        log.info("could not remember the model hash in %s", path.parent, exc_info=True)
