"""`<outdir>/invoke_log.txt`: one line `path: command` per image, appended in one write."""

from __future__ import annotations

import os

LOG_NAME = "invoke_log.txt"


def append_log(outdir: str, path: str, command: str) -> None:
    line = f"{path}: {command}\n".encode("utf-8")
    fd = os.open(os.path.join(outdir, LOG_NAME), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one O_APPEND write: lines from concurrent shells never interleave
    finally:
        os.close(fd)
