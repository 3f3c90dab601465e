"""The user's LoRA and textual-inversion files: found by name in their folders (`loras/` and `embeddings/`
beside models.yaml, or --lora_directory / --embedding_path), looked for again on every use so that a file
added while the shell runs is found by the next command. Only names, paths and hashes live here; reading
and applying the weights is engine/adapters.py's job."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError
from .files import stat_key
from .weights import PICKLES, SAFETENSORS

SUFFIXES = SAFETENSORS | PICKLES
# a diffusers save_lora_weights / textual-inversion training folder: the name is the folder's
FOLDER_FILES = {"lora": ("pytorch_lora_weights.safetensors", "pytorch_lora_weights.bin"),
                "embedding": ("learned_embeds.safetensors", "learned_embeds.bin")}
KIND_WORDS = {"lora": "LoRA", "embedding": "embedding"}
# the examples trained for the built-in demo model (toymodel/teach.py): looked in after the user's folders
EXAMPLES = Path(__file__).resolve().parent.parent / "data" / "examples"


@dataclass(frozen=True)
class WeightsFile:
    kind: str     # "lora" or "embedding"
    name: str     # the file's stem (or its diffusers folder's name)
    path: Path    # the weights file itself


def _scan(kind: str, folder: Path) -> list[WeightsFile]:
    """The weights files in `folder` and its subfolders, sorted by path."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in FOLDER_FILES[kind]:
            if name in files and Path(root) != folder:
                found.append(WeightsFile(kind, Path(root).name, Path(root, name)))
                break
        else:
            found += [WeightsFile(kind, Path(f).stem, Path(root, f)) for f in sorted(files)
                      if Path(f).suffix.lower() in SUFFIXES and not f.startswith(".")]
    return found


class Library:
    """The LoRA and embedding folders of a session."""

    def __init__(self, lora_dirs=(), embedding_dirs=()):
        self.dirs = {"lora": tuple(Path(d) for d in lora_dirs), "embedding": tuple(Path(d) for d in embedding_dirs)}
        self._hashes: dict[tuple, tuple[str, str]] = {}

    @classmethod
    def beside(cls, models_yaml: str | None, lora_dir: str | None = None, embedding_dir: str | None = None) -> Library:
        """`loras/` and `embeddings/` in models.yaml's folder, unless a folder is given for them; then the
        shipped examples for the demo model."""
        home = Path(models_yaml).resolve().parent if models_yaml else Path.cwd()
        return cls([lora_dir or home / "loras", EXAMPLES / "loras"],
                   [embedding_dir or home / "embeddings", EXAMPLES / "embeddings"])

    def files(self, kind: str) -> dict[str, WeightsFile]:
        """name -> file, for every file found now; the first folder (then path order) wins a name."""
        found: dict[str, WeightsFile] = {}
        for folder in self.dirs[kind]:
            if folder.is_dir():
                for file in _scan(kind, folder):
                    found.setdefault(file.name, file)
        return found

    def find(self, kind: str, name: str) -> WeightsFile:
        files = self.files(kind)
        file = files.get(name)
        if file is None:
            where = ", ".join(str(d) for d in self.dirs[kind]) or "(no folder)"
            known = sorted(files)
            listing = f"; known: {', '.join(known[:12])}{' ...' if len(known) > 12 else ''}" if known else ""
            raise ModelError(f"no {KIND_WORDS[kind]} named {name!r} in {where}{listing}")
        return file

    def hashes(self, file: WeightsFile) -> tuple[str, str]:
        """(sha256 of the file, A1111's short hash): A1111 hashes a LoRA's safetensors without its header
        (the "addnet" hash) and an embedding's whole file, and shows 12 hex digits. Remembered per file state."""
        key = (stat_key([file.path]), file.kind)
        if key not in self._hashes:
            whole, body = hashlib.sha256(), hashlib.sha256()
            with open(file.path, "rb") as f:
                data_start = 0
                if file.kind == "lora" and file.path.suffix.lower() in SAFETENSORS:
                    header = f.read(8)
                    whole.update(header)
                    data_start = 8 + int.from_bytes(header, "little") if len(header) == 8 else 0
                    whole.update(f.read(max(0, data_start - 8)))
                for block in iter(lambda: f.read(1 << 20), b""):
                    whole.update(block)
                    body.update(block)
            short = (body if data_start else whole).hexdigest()[:12]
            self._hashes[key] = (whole.hexdigest(), short)
        return self._hashes[key]
