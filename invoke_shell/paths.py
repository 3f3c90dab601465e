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


def in_outdir(path: str, outdir: str | None) -> str:
    """`path` as typed when it names something here (or is absolute); else the same name in the output folder
    when it is there, as InvokeAI 2.3 looked for `-I 000025.2182095108.png` (a glob: where it matches)."""
    import glob

    expanded = os.path.expanduser(path)
    if outdir is None or os.path.isabs(expanded) or expanded.startswith(("-", "~")):
        return path
    wildcard = bool(set("*?[") & set(expanded))
    here = glob.glob(expanded) if wildcard else os.path.exists(expanded)
    if here:
        return path
    there = os.path.join(outdir, expanded)
    found = glob.glob(there) if wildcard else os.path.exists(there)
    return there if found else path


def writable_folder(folder: str, switch: str = "-o/--outdir") -> None:
    """One-line ShellError when the images could not be saved in `folder`: it (or, when it does not exist yet,
    the nearest folder above it, where it would be made) is not a folder, is not writable, or is on a read-only
    or virtual file system. Checked before any work, and without writing anything."""
    from .errors import ShellError

    path = os.path.abspath(os.path.expanduser(folder))
    existing = path
    while not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    why = None
    if not os.path.isdir(existing):
        why = f"{existing} is not a folder" if existing != path else "it is not a folder"
    elif not os.access(existing, os.W_OK | os.X_OK):
        why = "no permission to write there" if existing == path else f"no permission to write in {existing}"
    else:
        stats = os.statvfs(existing)
        if stats.f_flag & os.ST_RDONLY:
            why = "a read-only file system"
        elif stats.f_blocks == 0:
            why = "a virtual file system, not storage"
    if why is not None:
        raise ShellError(f"{switch} {folder}: the output folder cannot be written ({why})")
