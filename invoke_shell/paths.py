"""Where this program keeps what it can make again: the cache directory."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$INVOKE_SHELL_CACHE, else $XDG_CACHE_HOME/invoke-shell, else ~/.cache/invoke-shell."""
    if os.environ.get("INVOKE_SHELL_CACHE"):
        return Path(os.environ["INVOKE_SHELL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "invoke-shell"
