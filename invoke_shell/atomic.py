"""Writing a file so that it holds either its old contents or all of the new ones, never a part."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import BinaryIO


def write_atomic(path: str | os.PathLike, data: bytes | str | Callable[[BinaryIO], None], *,
                 keep_mode: bool = False) -> None:
    """Write `data` (bytes, text as UTF-8, or a function that writes to the open binary file) to a
    temporary `.<name>.<pid>.tmp` in the same folder, flush it to disk, then rename it over `path`.
    With keep_mode, an existing file's permissions carry over. On any failure the temporary is removed
    and the error raised; `path` is untouched. (outputs.naming removes the temporaries of killed
    processes by that name pattern.)"""
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        if keep_mode and os.path.exists(path):
            os.chmod(tmp, os.stat(path).st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
