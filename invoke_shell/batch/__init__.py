"""Batch rendering: a command file split between processes started by `accelerate launch`, and a template
expander that writes command files (`python -m invoke_shell.batch`). Nothing here imports torch at import
time; `distributed` does when it runs."""

from __future__ import annotations

import os

# Set by `accelerate launch` in every process it starts (and WORLD_SIZE by torchrun, which it uses for
# several processes); a plain `python -m invoke_shell` sees none of them.
_LAUNCHER_VARIABLES = ("ACCELERATE_MIXED_PRECISION", "ACCELERATE_USE_CPU")


def launched() -> bool:
    """True when this process was started by `accelerate launch` (or torchrun with several processes)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        world = 1
    return world > 1 or any(name in os.environ for name in _LAUNCHER_VARIABLES)


def run(shell, source: str | None, args) -> int:
    """Run this process's share of the command file `source`; see distributed.py."""
    from .distributed import run_distributed

    return run_distributed(shell, source, args)
