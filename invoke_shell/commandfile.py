"""Command files: the lines that `--from_file`, `!replay` and the batch runner run."""

from __future__ import annotations

import os
import sys

from .errors import ShellError


def read_command_file(path: str) -> list[str]:
    """The lines of a command file (`-` is standard input); one-line ShellError when unreadable."""
    if path == "-":
        return sys.stdin.read().splitlines()
    if os.path.isdir(path):
        raise ShellError(f"{path} is a folder, not a command file")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        raise ShellError(f"no such command file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ShellError(f"cannot read {path}: {exc}") from None
