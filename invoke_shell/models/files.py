"""A model's files on disk, and a key for "exactly these files, as they are now" (path, size and modification
time), under which what was learnt about them (their sha256, their measured precision) is remembered."""

from __future__ import annotations

import hashlib
from pathlib import Path


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
