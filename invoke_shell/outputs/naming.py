"""Unique output prefixes (`000001`, `000002`, ...) shared safely by every shell writing one folder.

The counter lives in `<outdir>/.next_prefix`, read and bumped under an exclusive lock on
`<outdir>/.next_prefix.lock`, so two processes never get the same prefix. When the counter is missing
or behind, the largest prefix among the folder's PNGs decides (InvokeAI's rule).
"""

from __future__ import annotations

import os
import re

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

_PREFIXED = re.compile(r"^(\d+)\..*\.png$")


def _largest_prefix(outdir: str) -> int:
    largest = 0
    for name in os.listdir(outdir):
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
            value = max(stored, _largest_prefix(outdir) + 1, 1)
            tmp = f"{counter}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="ascii") as f:
                f.write(f"{value + 1}\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, counter)
        finally:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_UN)
    return f"{value:06d}"
