"""models.yaml (InvokeAI 2.3's format) <-> frozen ModelEntry records."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError
from . import builtin

FORMATS = ("diffusers",)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    description: str
    format: str
    path: str              # as written in the file; see `location`
    default: bool = False
    base_dir: str = "."    # the yaml's folder: relative paths resolve against it

    def location(self) -> Path:
        """The diffusers folder on disk (a built-in model is made first if needed)."""
        if builtin.is_builtin(self.path):
            return builtin.resolve(self.path)
        return Path(self.base_dir, os.path.expanduser(self.path))


@dataclass(frozen=True)
class Registry:
    entries: tuple[ModelEntry, ...]
    source: str | None  # the yaml file, None for the built-in registry

    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.entries)

    def get(self, name: str) -> ModelEntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(self.names()) or '(none)'}")

    def default(self) -> ModelEntry:
        for entry in self.entries:
            if entry.default:
                return entry
        if not self.entries:
            raise ModelError(f"{self.source} names no models")
        return self.entries[0]


BUILTIN = Registry((ModelEntry("tiny", "built-in tiny model (random weights, draws noise)", "diffusers",
                               "builtin:tiny", default=True),), None)


def load_registry(path: str | os.PathLike | None) -> Registry:
    """Read a models.yaml; None gives the built-in registry. Errors are one line (with the yaml line)."""
    if path is None:
        return BUILTIN
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ModelError(f"--conf: no such file: {path}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        raise ModelError(f"{path}: malformed YAML at {where}: {exc.problem}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected model names at the top level, found {type(data).__name__}")
    base = str(Path(path).resolve().parent)
    entries = []
    for name, stanza in data.items():
        if not isinstance(stanza, dict):
            raise ModelError(f"{path}: model {name!r} must be a mapping of fields, found {type(stanza).__name__}")
        fmt = stanza.get("format", "ckpt")
        if fmt not in FORMATS:
            raise ModelError(f"{path}: model {name!r} has format {fmt!r}; supported: {', '.join(FORMATS)}")
        if not isinstance(stanza.get("path"), str):
            raise ModelError(f"{path}: model {name!r} needs a path: to a local diffusers folder")
        entries.append(ModelEntry(str(name), str(stanza.get("description", "")), fmt, stanza["path"],
                                  bool(stanza.get("default", False)), base))
    return Registry(tuple(entries), str(path))
