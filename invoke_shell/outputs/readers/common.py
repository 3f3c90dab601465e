"""What every metadata family shares: typed reads of untrusted values, the notes line, and the step
from "what the file says" to a command our parser accepts. Everything here treats file text as data."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass, field

from ...errors import ParseError
from ...request import Defaults, GenerationRequest, parse, to_command
from ...switches import SAMPLERS, SEAMLESS_AXES, SEED_LIMIT

MAX_JSON_CHARS = 4_000_000   # Pillow already caps one text chunk; this bounds what json.loads sees
MAX_TEXT_CHARS = 20_000      # any single string we read (prompts are checked again against 2000)
NOTE_CHARS = 60              # a value in the not-carried-over line is cut here
NOTES_LINE_CHARS = 600
KEY_CHARS = 80               # a note's key (which may come from the file) is cut here

_NUMBER = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*")
_INT = re.compile(r"\s*[+-]?\d{1,30}\s*")


@dataclass
class Found:
    """What a file says, converted to our fields but not yet validated; `notes` lists what has no
    equivalent here."""

    prompt: str = ""
    negative: str = ""
    steps: int | None = None
    cfg_scale: float | None = None
    sampler: str | None = None
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    init_img: str | None = None
    strength: float | None = None
    fit: bool = False
    init_mask: str | None = None
    invert_mask: bool = False
    with_variations: tuple[tuple[int, float], ...] | None = None
    clip_skip: int | None = None  # A1111's count: 1 = the last layer
    switches: dict = field(default_factory=dict)  # the image tools' switches ({"seamless": True, ...})
    notes: list[str] = field(default_factory=list)

    def note(self, key: str, value: object = None) -> None:
        key = printable(str(key))  # keys can come from the file too (A1111 keys, ComfyUI node types)
        key = key if len(key) <= KEY_CHARS else key[: KEY_CHARS - 1] + "…"
        self.notes.append(key if value is None else f"{key}: {clip(value)}")

    def set_seed(self, value: object, what: str) -> None:
        seed = as_int(value, what)
        if 0 <= seed < SEED_LIMIT:
            self.seed = seed
        else:  # ComfyUI seeds go up to 2^64; ours are 32-bit, so the image cannot be reproduced
            self.note(what, f"{seed} (outside [0, 2^32): a random seed is used)")


def seamless_axes_of(x: object, y: object) -> dict:
    """The --seamless switches for a file's "tiles along x" and "along y" (True or anything else)."""
    axes = tuple(axis for axis, on in zip(SEAMLESS_AXES, (x, y)) if on is True)
    return {"seamless": True, "seamless_axes": axes} if axes else {}


def short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def printable(text: str) -> str:
    """`text` with the characters that would end a line or drive the terminal (controls, escape sequences,
    lone surrogates, U+2028/9) replaced by spaces."""
    return "".join(" " if unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") else c for c in text)


def clip(value: object) -> str:
    """A value as one short printable line, for the notes."""
    if not isinstance(value, str):
        try:
            value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError, RecursionError):
            value = repr(value)
    text = " ".join(printable(value[: NOTE_CHARS * 4]).split())
    return text if len(text) <= NOTE_CHARS else text[: NOTE_CHARS - 1] + "…"


def notes_line(notes: list[str] | tuple[str, ...]) -> str:
    """The one line that lists what was not carried over ("" when nothing was left out)."""
    if not notes:
        return ""
    line = printable("not carried over: " + ", ".join(notes))
    if len(line) > NOTES_LINE_CHARS:
        line = line[: NOTES_LINE_CHARS - 1] + "…"
    return line


def load_json_object(text: str, what: str) -> dict:
    if len(text) > MAX_JSON_CHARS:
        raise ParseError(f"{what} is {len(text)} characters long; at most {MAX_JSON_CHARS} are read")
    try:
        data = json.loads(text)
    except RecursionError:
        raise ParseError(f"{what} is nested too deeply") from None
    except ValueError as exc:
        raise ParseError(f"{what} is not JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ParseError(f"{what} should be a JSON object, got {type(data).__name__}")
    return data


def as_int(value: object, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT.fullmatch(value):
        return int(value)
    raise ParseError(f"{what} should be an integer, got {short(value)}")


def as_float(value: object, what: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an integer past float's range (JSON allows any size)
            raise ParseError(f"{what} should be a finite number, got {short(value)}") from None
    elif isinstance(value, str) and len(value) <= 40 and _NUMBER.fullmatch(value):
        number = float(value)
    else:
        raise ParseError(f"{what} should be a number, got {short(value)}")
    if not math.isfinite(number):
        raise ParseError(f"{what} should be a finite number, got {short(value)}")
    return number


def as_text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ParseError(f"{what} should be text, got {short(value)}")
    if len(value) > MAX_TEXT_CHARS:
        raise ParseError(f"{what} has {len(value)} characters; at most {MAX_TEXT_CHARS} are read")
    return value


def one_line(text: str) -> str:
    """Whitespace of any kind (newlines, tabs, Unicode line separators) folded into single spaces."""
    return " ".join(text.split())


def plain_brackets(text: str, found: Found, what: str) -> str:
    """Square brackets mean "negative prompt" here but emphasis or prompt editing elsewhere: a foreign
    prompt's brackets become parentheses, and the notes say so."""
    if "[" in text or "]" in text:
        found.note(f"[ ] in the {what} (turned into ( ))")
        text = text.replace("[", "(").replace("]", ")")
    return text


def map_sampler(name: object, table: dict[str, str], found: Found, what: str) -> None:
    """Set found.sampler from a foreign sampler name, or note it as unmapped (the default is kept)."""
    text = as_text(name, what)
    ours = table.get(text) or table.get(text.lower())
    if ours is None:
        found.note(what, f"{text} (no equivalent; {Defaults().sampler} used)")
    else:
        found.sampler = ours


def _clip_skip(found: Found) -> bool:
    """Whether the found clip skip becomes `--clip_skip` (2 to 12); one outside that is noted instead."""
    skip = found.clip_skip
    if skip is None or skip == 1:
        return False
    if not 2 <= skip <= 12:
        found.note("clip skip", f"{skip} (outside [1, 12]: not carried over)")
        return False
    return True


def command_of(found: Found) -> str:
    """The canonical command for `found`: built as a request, written out, parsed back by our parser."""
    prompt = one_line(found.prompt)
    negative = one_line(found.negative)
    if negative:
        prompt = f"{prompt} [{negative}]".strip()
    defaults = Defaults()
    strength = found.strength
    if found.init_img is not None and strength is None:
        strength = defaults.strength
    request = GenerationRequest(
        prompt=prompt,
        steps=found.steps if found.steps is not None else defaults.steps,
        cfg_scale=found.cfg_scale if found.cfg_scale is not None else defaults.cfg_scale,
        sampler=found.sampler if found.sampler in SAMPLERS else defaults.sampler,
        seed=found.seed, width=found.width, height=found.height, init_img=found.init_img,
        strength=strength if found.init_img is not None else None, fit=found.fit and found.init_img is not None,
        init_mask=found.init_mask if found.init_img is not None else None,
        invert_mask=found.invert_mask and found.init_img is not None,
        **({"with_variations": found.with_variations} if found.with_variations else {}),
        **({"clip_skip": found.clip_skip} if _clip_skip(found) else {}), **found.switches)
    return to_command(parse(to_command(request)))
