"""What a prompt asks for beyond its words, read from the text alone (nothing here imports torch):

- LoRAs: `withLora(name[,weight])` (InvokeAI 2.3 and compel; `useLora` too) and `<lora:name[:weight]>`
  (AUTOMATIC1111). They select weights for the model and are no prompt text: they are taken out of the text
  the text encoder reads.
- textual-inversion triggers: `<name>` (InvokeAI 2.3's form), kept in the text (the tokenizer knows them
  once the embedding is loaded).
- InvokeAI 2.3's old blend, `a cat:0.5 a dog:0.5`, rewritten in compel's `.blend()` form.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .errors import ParseError

LORA_WEIGHT = (-2.0, 2.0)  # a LoRA's weight, both ends included (1 = as trained, 0 = off, < 0 = inverted)
NAME = r"[\w.+-]{1,80}"
_WITH_LORA = re.compile(r"(?:withLora|useLora)\(\s*([^,()]*?)\s*(?:,\s*([^()]*?)\s*)?\)")
_A1111_LORA = re.compile(r"<lora:([^<>]*)>")
_TRIGGER = re.compile(r"<(" + NAME + r")>")
_NAME = re.compile(NAME)
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
# InvokeAI 2.3's legacy blend (ldm/invoke/conditioning.py): "text:weight" parts, `\:` an escaped colon
_LEGACY_PART = re.compile(r"(?P<prompt>(?:\\:|[^:])+)(?::+(?P<weight>-?\d+(?:\.\d+)?)?\s*|$)")


@dataclass(frozen=True)
class LoraUse:
    name: str
    weight: float = 1.0

    def compel_form(self) -> str:
        return f"withLora({self.name},{self.weight:g})"

    def a1111_form(self) -> str:
        return f"<lora:{self.name}:{self.weight:g}>"


@dataclass(frozen=True)
class Used:
    """A LoRA or embedding a command ran with, as its PNG records it."""

    kind: str                # "lora" or "embedding"
    name: str
    weight: float | None     # a LoRA's; None for an embedding
    sha256: str              # of the file
    short_hash: str          # A1111's: 12 hex digits (a LoRA's safetensors hashed without its header)


@dataclass(frozen=True)
class PromptExtras:
    text: str                     # the prompt without its LoRA syntax (triggers stay)
    loras: tuple[LoraUse, ...]    # in the order typed
    triggers: tuple[str, ...]     # embedding names typed as <name>, each once, in order


def _weight(text: str | None, where: str) -> float:
    if text is None or text == "":
        return 1.0
    if not _NUMBER.fullmatch(text):
        raise ParseError(f"{where}: the weight should be a number, got {text[:40]!r}")
    weight = float(text)
    lo, hi = LORA_WEIGHT
    if not (math.isfinite(weight) and lo <= weight <= hi):
        raise ParseError(f"{where}: a LoRA weight must be in [{lo:g}, {hi:g}], got "
                         f"{text if len(text) <= 40 else text[:39] + '…'}")
    return weight


def _name(text: str, where: str) -> str:
    if not _NAME.fullmatch(text):
        raise ParseError(f"{where}: a LoRA name is a file name without its extension (letters, digits, . _ + -), "
                         f"got {text[:40]!r}")
    return text


def extract(prompt: str) -> PromptExtras:
    """The LoRAs and triggers of a prompt; ParseError for a bad name or weight, or a LoRA named twice."""
    loras: list[LoraUse] = []

    def take_compel(match: re.Match) -> str:
        where = match.group(0)[:60]
        loras.append(LoraUse(_name(match.group(1), where), _weight(match.group(2), where)))
        return " "

    def take_a1111(match: re.Match) -> str:
        where = match.group(0)[:60]
        name, _, rest = match.group(1).partition(":")
        if ":" in rest:
            raise ParseError(f"{where}: give one weight, <lora:name:weight> (separate text encoder and UNet "
                             "weights are not supported)")
        loras.append(LoraUse(_name(name, where), _weight(rest, where)))
        return " "

    text = _A1111_LORA.sub(take_a1111, _WITH_LORA.sub(take_compel, prompt))
    names = [lora.name for lora in loras]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ParseError(f"LoRA {twice[0]!r} is named twice in the prompt; name it once, with one weight")
    text = " ".join(text.split()) if loras else text
    triggers = tuple(dict.fromkeys(_TRIGGER.findall(text)))
    return PromptExtras(text, tuple(loras), triggers)


def is_lora(text: str) -> bool:
    """Whether `text` names at least one LoRA in a form this shell takes (a name and a weight in range)."""
    try:
        return bool(extract(text).loras)
    except ParseError:
        return False


def legacy_blend(text: str, skip_normalize: bool = False) -> str | None:
    """InvokeAI 2.3's `a cat:0.5 a dog:0.5` as compel's `("a cat", "a dog").blend(0.5, 0.5)`, or None when
    the text has no such blend. As in 2.3 the weights are normalized to sum to 1 unless `skip_normalize`
    (-x/--skip_normalize). A colon with no number after it stays text (2.3 split there too, weighting both
    sides 1; a prompt like `photo: a cat` is no blend here)."""
    if not re.search(r"(?<!\\):+-?\d+(?:\.\d+)?", text):
        return None
    parts = [(m.group("prompt").replace("\\:", ":").strip(), float(m.group("weight") or 1))
             for m in _LEGACY_PART.finditer(text) if m.group("prompt").strip()]
    if len(parts) < 2:
        return None
    quoted = ", ".join('"' + prompt.replace('"', '\\"') + '"' for prompt, _ in parts)
    weights = ", ".join(f"{weight:g}" for _, weight in parts)
    if not skip_normalize and sum(weight for _, weight in parts) == 0:
        raise ParseError(f"the blend's weights ({weights}) add up to 0; give weights with a non-zero sum, "
                         "or -x/--skip_normalize")
    return f"({quoted}).blend({weights}{', no_normalize' if skip_normalize else ''})"
