"""Unique output prefixes (`000001`, `000002`, ...) shared safely by every shell writing one folder.

The counter lives in `<outdir>/.next_prefix`, read and bumped under an exclusive lock on
`<outdir>/.next_prefix.lock`, so two processes never get the same prefix. When the counter is missing
or behind, the largest prefix among the folder's PNGs decides (InvokeAI's rule).
"""

from __future__ import annotations

import os
import re
import time

from ..atomic import write_atomic

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

_PREFIXED = re.compile(r"^(\d+)\..*\.png$")
_TEMPORARY = re.compile(r"^\..+\.(\d+)\.tmp$")  # `.<name>.<pid>.tmp`: pngio's and the counter's partial files


STALE_SECONDS = 600  # a partial file this old whose process is gone here is left over from a crash


def _remove_stale_temporaries(outdir: str, names: list[str]) -> None:
    """Delete the partial files of shells killed while writing: old, and of a process that no longer runs
    (the age guards a shell on another machine or in another container, whose pid means nothing here)."""
    if os.name != "posix":
        return
    for name in names:
        match = _TEMPORARY.match(name)
        if not match:
            continue
        path = os.path.join(outdir, name)
        try:
            if os.stat(path).st_mtime > time.time() - STALE_SECONDS:
                continue
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:  # gone: its partial file can never be finished
            try:
                os.unlink(path)
            except OSError:
                pass
        except (OSError, OverflowError, ValueError):  # vanished meanwhile, another user's process, not a pid
            pass


def _largest_prefix(names: list[str]) -> int:
    largest = 0
    for name in names:
        match = _PREFIXED.match(name)
        if match:
            largest = max(largest, int(match.group(1)))
    return largest


def next_prefix(outdir: str) -> str:
    """Allocate the next prefix for `outdir` (created if needed)."""
    os.makedirs(outdir, exist_ok=True)
    counter = os.path.join(outdir, ".next_prefix")
    with open(os.path.join(outdir, ".next_prefix.lock"), "a+") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            try:
                with open(counter, encoding="ascii") as f:
                    stored = int(f.read().strip() or 0)
            except (FileNotFoundError, ValueError):
                stored = 0
            names = os.listdir(outdir)  # one listing serves both
            value = max(stored, _largest_prefix(names) + 1, 1)
            _remove_stale_temporaries(outdir, names)
            write_atomic(counter, f"{value + 1}\n")
        finally:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_UN)
    return f"{value:06d}"
