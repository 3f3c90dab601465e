"""Tab completion fed by the switch table, the command registry, the model registry and the file system."""

from __future__ import annotations

import os

from prompt_toolkit.completion import Completer, Completion, PathCompleter
from prompt_toolkit.document import Document

from .commands import COMMANDS
from .switches import BY_SPELLING, SAMPLERS, SWITCHES

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")


def _path_completer(extensions: tuple[str, ...] | None) -> PathCompleter:
    def wanted(name: str) -> bool:
        return extensions is None or os.path.isdir(name) or name.lower().endswith(extensions)

    return PathCompleter(file_filter=wanted, expanduser=True)


class ShellCompleter(Completer):
    def __init__(self, model_names=lambda: (), seeds=lambda: ()):
        self.model_names = model_names
        self.seeds = seeds
        self.images = _path_completer(IMAGE_EXTENSIONS)
        self.text_files = _path_completer((".txt",))
        self.dirs = _path_completer(())
        self.model_files = _path_completer((".safetensors", ".ckpt", ".pt"))

    def get_completions(self, document: Document, complete_event):
        text = document.text_before_cursor
        words = text.split(" ")
        word = words[-1]
        previous = words[-2] if len(words) > 1 else ""
        if len(words) == 1 and text.startswith("!"):
            for name, cmd in sorted(COMMANDS.items()):
                if name.startswith(word):
                    yield Completion(name, -len(word), display_meta=cmd.help)
            return
        if text.startswith("!") and len(words) >= 2:
            cmd = COMMANDS.get(words[0])
            if cmd is not None:
                yield from self._value(cmd.completes, text[len(words[0]) + 1:])
            return
        switch = BY_SPELLING.get(previous)
        if switch is not None and switch.kind != "flag":
            yield from self._value(switch.completes, word)
            return
        if word.startswith("-"):
            for sw in SWITCHES:
                for spelling in sw.spellings:
                    if spelling.startswith(word):
                        yield Completion(spelling, -len(word), display_meta=sw.help)

    def _value(self, kind: str, word: str):
        if kind == "sampler":
            for name in SAMPLERS:
                if name.startswith(word):
                    yield Completion(name, -len(word))
        elif kind == "model":
            for name in self.model_names():
                if name.startswith(word):
                    yield Completion(name, -len(word))
        elif kind == "seed":
            for seed in self.seeds():
                if str(seed).startswith(word):
                    yield Completion(str(seed), -len(word))
        elif kind in ("image", "text_file", "dir", "model_file"):
            completer = {"image": self.images, "text_file": self.text_files, "dir": self.dirs,
                         "model_file": self.model_files}[kind]
            yield from completer.get_completions(Document(word, len(word)), None)
