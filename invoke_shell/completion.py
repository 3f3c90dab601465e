"""Tab completion fed by the switch table, the command table it is handed, the model registry and the file system.
Each completion carries a short help text beside it."""

from __future__ import annotations

import os
import re

from prompt_toolkit.completion import Completer, Completion, PathCompleter
from prompt_toolkit.document import Document

from .switches import BY_SPELLING, SWITCHES

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")
# the value being typed after a switch: a quoted value may hold spaces
# a LoRA name or an embedding trigger being typed in the prompt
_LORA_NAME = re.compile(r"(?:withLora|useLora)\(\s*(?P<name>[\w.+-]*)$|<lora:(?P<a1111>[\w.+-]*)$")
_TRIGGER = re.compile(r"<(?P<name>[\w.+-]*)$")
_SWITCH_VALUE = re.compile(r"(?:^|\s)(?P<switch>-{1,2}[A-Za-z_]+)\s+(?P<value>\"[^\"]*|'[^']*|\S*)$")


def _path_completer(extensions: tuple[str, ...] | None, get_paths=None) -> PathCompleter:
    def wanted(name: str) -> bool:
        return extensions is None or os.path.isdir(name) or name.lower().endswith(extensions)

    return PathCompleter(file_filter=wanted, expanduser=True, get_paths=get_paths)


class ShellCompleter(Completer):
    def __init__(self, commands, model_names=lambda: (), seeds=lambda: (), outdir=lambda: "outputs",
                 adapter_names=lambda kind: ()):
        self.commands = commands  # a CommandTable
        self.model_names = model_names
        self.adapter_names = adapter_names  # kind ("lora", "embedding") -> the names found now
        self.seeds = seeds
        # images are looked for here and in the output folder
        self.images = _path_completer(IMAGE_EXTENSIONS, get_paths=lambda: [".", outdir()])
        self.text_files = _path_completer((".txt",))
        self.dirs = _path_completer(())
        self.model_files = _path_completer((".safetensors", ".ckpt", ".pt"))

    def get_completions(self, document: Document, complete_event):
        text = document.text_before_cursor
        if text.startswith("!"):
            name, space, rest = text.partition(" ")
            if not space:
                for spelling, cmd in self.commands.spellings():
                    if spelling.startswith(name):
                        yield Completion(spelling, -len(name), display_meta=cmd.help)
                return
            cmd = self.commands.get(name)
            if cmd is not None:
                yield from self._value(cmd.completes, rest)
            return
        match = _SWITCH_VALUE.search(text)
        if match is None and not text.split(" ")[-1].startswith("-"):
            yield from self._in_prompt(text)
        if match and match.group("switch") in BY_SPELLING and BY_SPELLING[match.group("switch")].kind != "flag":
            sw, value = BY_SPELLING[match.group("switch")], match.group("value").lstrip("\"'")
            if sw.choices:  # samplers, precisions: the table's own list
                names = list(sw.choices) + [alias for alias, _ in sw.synonyms]
                yield from (Completion(name, -len(value), display_meta=sw.dest) for name in names
                            if name.startswith(value))
                return
            yield from self._value(sw.completes, value)
            return
        word = text.split(" ")[-1]
        if word.startswith("-"):
            for sw in SWITCHES:
                for spelling in sw.spellings:
                    if spelling.startswith(word):
                        yield Completion(spelling, -len(word), display_meta=sw.help)

    def _in_prompt(self, text: str):
        """LoRA names after `withLora(` and `<lora:`; embedding triggers (and `<lora:`) after `<`."""
        lora = _LORA_NAME.search(text)
        if lora is not None:
            typed = lora.group("name") if lora.group("name") is not None else lora.group("a1111")
            for name in sorted(self.adapter_names("lora")):
                if name.startswith(typed):
                    yield Completion(name, -len(typed), display=name, display_meta="LoRA")
            return
        trigger = _TRIGGER.search(text)
        if trigger is not None:
            typed = trigger.group("name")
            for name in sorted(self.adapter_names("embedding")):
                if name.startswith(typed):
                    yield Completion(f"{name}>", -len(typed), display=f"<{name}>", display_meta="embedding")
            if "lora:".startswith(typed):
                yield Completion("lora:", -len(typed), display="<lora:", display_meta="a LoRA, A1111's form")

    def _value(self, kind: str, word: str):
        if kind == "model":
            for name in self.model_names():
                if name.startswith(word):
                    yield Completion(name, -len(word), display_meta="model")
        elif kind == "seed":
            for seed in self.seeds():
                if str(seed).startswith(word):
                    yield Completion(str(seed), -len(word), display_meta="seed used this session")
        elif kind in ("image", "text_file", "dir", "model_file"):
            completer = {"image": self.images, "text_file": self.text_files, "dir": self.dirs,
                         "model_file": self.model_files}[kind]
            yield from completer.get_completions(Document(word, len(word)), None)
