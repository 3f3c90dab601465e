"""models.yaml (InvokeAI 2.3's format) <-> frozen ModelEntry records, and atomic rewrites of the file.

Two kinds of diffusion-model stanza:
- diffusers: description, format: diffusers, path (or repo_id, read from the local Hugging Face cache
  only), optional vae: {path: ...}, default;
- checkpoint (format omitted or `ckpt`): description, weights (.safetensors/.ckpt), optional config (an
  LDM yaml or a diffusers config folder), vae, width, height, default.
And three kinds of post-processing model (models/tools.py loads them): `format: upscaler` and `format: facetool`
(a weights file spandrel recognises: ESRGAN, Real-ESRGAN, SwinIR...; GFPGAN, CodeFormer, RestoreFormer) and
`format: text_mask` (a transformers CLIPSeg folder), each with path and optional description and default (the
one of its kind used when no name is given).
Relative paths resolve against the yaml's folder. Fields this code does not know are kept on rewrite.
"""

from __future__ import annotations

import os
import re
import reprlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..atomic import write_atomic
from ..errors import ModelError
from . import builtin

TOOL_FORMATS = ("upscaler", "facetool", "text_mask")
FORMATS = ("diffusers", "ckpt") + TOOL_FORMATS
NAME_PATTERN = re.compile(r"[\w.+:/-]+")  # InvokeAI's rule for model names


@dataclass(frozen=True)
class ModelEntry:
    name: str
    description: str = ""
    format: str = "diffusers"
    path: str | None = None       # diffusers folder (or builtin:NAME)
    repo_id: str | None = None    # diffusers, from the local Hugging Face cache
    weights: str | None = None    # checkpoint file
    config: str | None = None     # checkpoint: LDM yaml or diffusers config folder
    vae: str | None = None        # a diffusers VAE folder, or a VAE checkpoint file
    width: int | None = None
    height: int | None = None
    default: bool = False
    base_dir: str = field(default=".", compare=False)
    extra: tuple[tuple[str, Any], ...] = field(default=(), compare=False)  # unknown fields, kept verbatim

    @property
    def is_tool(self) -> bool:
        """An upscaler, face restorer or text-mask model, not a diffusion model."""
        return self.format in TOOL_FORMATS

    def resolve(self, value: str | None) -> Path | None:
        """A path from the stanza, relative to the yaml's folder."""
        if value is None:
            return None
        return Path(self.base_dir, os.path.expanduser(value))

    def location(self) -> Path:
        """The diffusers folder or checkpoint file on disk (a built-in model is made first if needed)."""
        if self.path is not None and builtin.is_builtin(self.path):
            return builtin.resolve(self.path)
        return self.resolve(self.weights if self.format == "ckpt" else self.path)

    def to_stanza(self) -> dict[str, Any]:
        stanza: dict[str, Any] = {"description": self.description, "format": self.format}
        for key in ("path", "repo_id", "weights", "config", "width", "height"):
            if getattr(self, key) is not None:
                stanza[key] = getattr(self, key)
        if self.vae is not None:
            stanza["vae"] = {"path": self.vae} if self.format == "diffusers" else self.vae
        stanza.update(dict(self.extra))
        if self.default:
            stanza["default"] = True
        return stanza


_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxlist, _SHOWN.maxdict, _SHOWN.maxstring, _SHOWN.maxother = 1, 4, 4, 60, 60


def shown(value: Any) -> str:
    """A yaml value in an error message: short however large the value is (yaml aliases can make a
    few lines into billions of items)."""
    return _SHOWN.repr(value)


def entry_from_stanza(name: str, stanza: Any, base_dir: str, source: str) -> ModelEntry:
    if not isinstance(stanza, dict):
        raise ModelError(f"{source}: model {name!r} must be a mapping of fields, found {type(stanza).__name__}")
    fmt = stanza.get("format", "ckpt")
    if fmt not in FORMATS:
        raise ModelError(f"{source}: model {name!r} has format {shown(fmt)}; supported: {', '.join(FORMATS)}")
    vae = stanza.get("vae")
    if isinstance(vae, dict):
        vae = vae.get("path")
    if vae is not None and not isinstance(vae, str):
        raise ModelError(f"{source}: model {name!r}: vae must be a path, got {shown(vae)}")
    description = stanza.get("description")
    if description is not None and not isinstance(description, (str, int, float)):
        raise ModelError(f"{source}: model {name!r}: description must be text, got {shown(description)}")
    known = {"description", "format", "path", "repo_id", "weights", "config", "vae", "width", "height", "default"}
    entry = ModelEntry(
        name=str(name), description=str(description or ""), format=fmt,
        path=_opt_str(stanza, "path", name, source), repo_id=_opt_str(stanza, "repo_id", name, source),
        weights=_opt_str(stanza, "weights", name, source), config=_opt_str(stanza, "config", name, source),
        vae=vae,
        width=_opt_int(stanza, "width", name, source), height=_opt_int(stanza, "height", name, source),
        default=bool(stanza.get("default", False)), base_dir=base_dir,
        extra=tuple((k, v) for k, v in stanza.items() if k not in known))
    if fmt == "diffusers" and not (entry.path or entry.repo_id):
        raise ModelError(f"{source}: model {name!r} needs path: (a local diffusers folder) or repo_id:")
    if fmt in TOOL_FORMATS and not entry.path:
        what = "folder" if fmt == "text_mask" else "file"
        raise ModelError(f"{source}: model {name!r} needs path: (its weights {what})")
    if fmt == "ckpt" and not entry.weights:
        raise ModelError(f"{source}: model {name!r} needs weights: (a .safetensors or .ckpt file)")
    return entry


def _opt_str(stanza: dict, key: str, name: str, source: str) -> str | None:
    value = stanza.get(key)
    if value is not None and not isinstance(value, str):
        raise ModelError(f"{source}: model {name!r}: {key} must be text, got {shown(value)}")
    return value


def _opt_int(stanza: dict, key: str, name: str, source: str) -> int | None:
    value = stanza.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise ModelError(f"{source}: model {name!r}: {key} must be a positive integer, got {shown(value)}")
    return value


@dataclass(frozen=True)
class Registry:
    entries: tuple[ModelEntry, ...]
    source: str | None           # the yaml file; None for the built-in registry (nothing to write)
    header: str = ""             # the file's leading comment lines, kept on rewrite

    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.entries)

    def get(self, name: str) -> ModelEntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(self.names()) or '(none)'}")

    def default(self) -> ModelEntry:
        """The diffusion model the shell starts on: the one marked default, else the first."""
        models = [e for e in self.entries if not e.is_tool]
        for entry in models:
            if entry.default:
                return entry
        if not models:
            raise ModelError(f"{self.source} names no diffusion models")
        return models[0]

    def of_format(self, fmt: str) -> tuple[ModelEntry, ...]:
        return tuple(e for e in self.entries if e.format == fmt)

    def with_entry(self, entry: ModelEntry, replacing: str | None = None) -> Registry:
        """A registry with `entry` added (or put in place of `replacing`). A new default clears the old."""
        if not NAME_PATTERN.fullmatch(entry.name):
            raise ModelError(f"model name {entry.name!r}: use letters, digits and . _ + : / - only")
        old = replacing or entry.name
        if entry.name != old and entry.name in self.names():
            raise ModelError(f"a model named {entry.name!r} exists already")
        entries = [e for e in self.entries]
        if entry.default:  # one default among the diffusion models, and one of each kind of tool
            entries = [replace(e, default=False) if (e.format if e.is_tool else "") ==
                       (entry.format if entry.is_tool else "") else e for e in entries]
        names = [e.name for e in entries]
        if old in names:
            entries[names.index(old)] = entry
        else:
            entries.append(entry)
        return replace(self, entries=tuple(entries))

    def without(self, name: str) -> Registry:
        self.get(name)
        return replace(self, entries=tuple(e for e in self.entries if e.name != name))

    def render(self) -> str:
        import yaml

        body = yaml.safe_dump({e.name: e.to_stanza() for e in self.entries}, sort_keys=False,
                              default_flow_style=False, allow_unicode=True)
        return self.header + body

    def save(self) -> None:
        """Rewrite the yaml atomically (temporary file in the same folder, then rename)."""
        if self.source is None:
            raise ModelError("the built-in model list has no models.yaml to write; start with --conf FILE")
        write_atomic(self.source, self.render(), keep_mode=True)


BUILTIN = Registry((
    ModelEntry("demo", "built-in demonstration model: 64 x 64 shapes in colours, and fire", "diffusers",
               path="builtin:demo", default=True),
    ModelEntry("tiny", "built-in tiny model (random weights, draws noise; for tests)", "diffusers",
               path="builtin:tiny"),
), None)


def _header(text: str) -> str:
    lines = []
    for line in text.splitlines(keepends=True):
        if line.startswith("#") or not line.strip():
            lines.append(line)
        else:
            break
    return "".join(lines)


DEFAULT_HEADER = """\
# invoke-shell models (InvokeAI 2.3's models.yaml format). Relative paths resolve against this folder.
"""


def load_registry(path: str | os.PathLike | None, missing_ok: bool = False) -> Registry:
    """Read a models.yaml; None gives the built-in registry. With `missing_ok`, a missing file gives the
    built-in registry that will be written there on the first change. Errors are one line."""
    if path is None:
        return BUILTIN
    if missing_ok and not os.path.exists(path):
        return replace(BUILTIN, source=str(path), header=DEFAULT_HEADER)
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        data = yaml.safe_load(text)
    except FileNotFoundError:
        raise ModelError(f"--conf: no such file: {path}") from None
    except IsADirectoryError:
        raise ModelError(f"--conf: {path} is a folder, not a yaml file") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "an unknown place"
        raise ModelError(f"{path}: malformed YAML at {where}: {exc.problem}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected model names at the top level, found {type(data).__name__}")
    base = str(Path(path).resolve().parent)
    entries = tuple(entry_from_stanza(str(name), stanza, base, str(path)) for name, stanza in data.items())
    return Registry(entries, str(path), _header(text))
