"""The values of the switch table's switches: converting a switch's text (`-V 7:0.5`, `--seamless_axes x,y`),
checking a value against its switch, and the one-line messages that say what is wrong. Nothing here imports
torch."""

from __future__ import annotations

import re
import shlex
import unicodedata

from .errors import ParseError
from .switches import BY_DEST, SEED_LIMIT, Switch

# Stable Diffusion's VAE decoder holds about this much per output pixel at its peak in float32 (measured:
# 3.9 kB at 512 x 512); the refusal of a too-large size says what the size would need
DECODE_BYTES_PER_PIXEL = 4000
ASSUMED_SIDE = 512  # a side not given, for that estimate


def check_printable(what: str, text: str) -> None:
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cs":  # a lone surrogate: how Python carries a byte that is not UTF-8
            byte = f"0x{ord(ch) - 0xDC00:02x}" if 0xDC80 <= ord(ch) <= 0xDCFF else repr(ch)
            raise ParseError(f"{what} contains a byte that is not UTF-8 text ({byte}); save the text as UTF-8")
        if category in ("Cc", "Zl", "Zp"):  # Zl/Zp: U+2028/9 would split lines
            raise ParseError(f"{what} contains the control character {ch!r}; remove it")


def shown_value(value: object, limit: int = 60) -> str:
    """A value as an error message shows it: its repr, cut short (a pasted line can hold anything)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _memory(nbytes: int) -> str:
    if nbytes >= 2**60:
        return "more than 1 EiB"
    gib = nbytes / 2**30
    return "about " + (f"{gib / 1024:.0f} TiB" if gib >= 1024 else f"{gib:.0f} GiB" if gib >= 10 else f"{gib:.1f} GiB")


def check_size(width: object, height: object) -> None:
    """Refuse a width or height beyond the switch table's limit, saying what that size would need."""
    sides = ((BY_DEST["width"], width), (BY_DEST["height"], height))
    given = [isinstance(v, int) and not isinstance(v, bool) for _, v in sides]
    if any(ok and v < sw.range.lo for (sw, v), ok in zip(sides, given)):
        return  # the range check says what is wrong with that side
    over = [sw for (sw, v), ok in zip(sides, given) if ok and v > sw.range.hi]
    if not over:
        return
    (wsw, w), (hsw, h) = sides
    w, h = (w if given[0] else ASSUMED_SIDE), (h if given[1] else ASSUMED_SIDE)
    size = (f"{wsw.name} {shown_value(w)}" if given[0] else f"a width of {w}") + " x " + (
        f"{hsw.name} {shown_value(h)}" if given[1] else f"a height of {h}")
    limits = " and ".join(f"{sw.name} must be in {sw.range.describe()}" for sw in over)
    raise ParseError(f"{size} would need {_memory(w * h * DECODE_BYTES_PER_PIXEL)} of memory to decode "
                     f"(about 4 kB a pixel in float32); {limits}")


def check_value(sw: Switch, value: object) -> None:
    if sw.kind == "flag":
        if not isinstance(value, bool):
            raise ParseError(f"{sw.name} is a flag, got {shown_value(value)}")
        return
    if sw.kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        raise ParseError(f"{sw.name} expects an integer, got {shown_value(value)}")
    if sw.kind == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ParseError(f"{sw.name} expects a number, got {shown_value(value)}")
    if sw.kind in ("path", "choice", "str") and not isinstance(value, str):
        raise ParseError(f"{sw.name} expects text, got {shown_value(value)}")
    if sw.kind == "str" and not re.fullmatch(r"[\w.+:/-]{1,200}", value):
        raise ParseError(f"{sw.name} expects a model name (letters, digits and . _ + : / -), got {shown_value(value)}")
    if sw.kind == "variations":
        if not isinstance(value, tuple) or not value:
            raise ParseError(f"{sw.name} expects seed:weight pairs, got {shown_value(value)}")
        for pair in value:
            if (not isinstance(pair, tuple) or len(pair) != 2 or isinstance(pair[0], bool)
                    or not isinstance(pair[0], int) or not isinstance(pair[1], float)):
                raise ParseError(f"{sw.name} expects seed:weight pairs, got {shown_value(pair)}")
            if not 0 <= pair[0] < SEED_LIMIT:
                raise ParseError(f"{sw.name}: seeds must be in [0, 2^32), got {shown_value(pair[0])}")
            if not 0 <= pair[1] <= 1:  # also false for nan
                raise ParseError(f"{sw.name}: weights must be in [0, 1], got {shown_value(pair[1])}")
        return
    if sw.kind == "template":
        if not isinstance(value, str) or not value.endswith(".png") or not 5 <= len(value) <= 200 \
                or any(c in value for c in "/\\\0"):
            raise ParseError(f"{sw.name} must be a file name ending in .png, without / (at most 200 characters), "
                             f"got {shown_value(value)}")
        check_printable(f"the {sw.name} template", value)
        return
    if sw.kind in ("floats", "ints"):
        _check_numbers(sw, value)
        return
    if sw.kind in ("upscale", "textmask"):
        _check_pair(sw, value)
        return
    if sw.kind in ("outcrop", "direction"):
        pairs = value if sw.kind == "outcrop" else (value,)
        if not isinstance(value, tuple) or not pairs or not all(isinstance(p, tuple) and len(p) == 2 for p in pairs):
            raise ParseError(f"{sw.name} expects {sw.metavar}, got {shown_value(value)}")
        for side, pixels in pairs:
            _check_side(sw, side, pixels, optional=sw.kind == "direction")
        if len({side for side, _ in pairs}) != len(pairs):
            raise ParseError(f"{sw.name} names a side twice: {shown_value(value)}")
        return
    if sw.kind == "axes":
        if not isinstance(value, tuple) or not value or list(value) != [a for a in sw.choices if a in value]:
            raise ParseError(f"{sw.name} must be {', '.join(sw.choices)} or several of them joined by commas, "
                             f"got {shown_value(value)}")
        return
    if sw.dest == "seed":
        if value >= SEED_LIMIT:
            raise ParseError(f"{sw.name} must be in [0, 2^32) or a negative back-reference, got {shown_value(value)}")
        return
    if sw.range is not None and not sw.range.contains(value):
        raise ParseError(f"{sw.name} must be in {sw.range.describe()}, got {shown_value(value)}")
    if sw.choices and value not in sw.choices:
        raise ParseError(f"{sw.name} must be one of {', '.join(sw.choices)}; got {shown_value(value)}")
    if sw.kind == "path":
        if not value.strip():
            raise ParseError(f"{sw.name} needs a path, got an empty one")
        check_printable(f"the {sw.name} path", value)


def convert(sw: Switch, text: str) -> object:
    if sw.kind == "int":
        try:
            return int(text, 10)
        except ValueError:
            raise ParseError(f"{sw.name} expects an integer, got {shown_value(text)}") from None
    if sw.kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ParseError(f"{sw.name} expects a number, got {shown_value(text)}") from None
    if sw.kind in PARSERS:
        return PARSERS[sw.kind](sw, text)
    if sw.kind == "choice":
        lowered = dict(sw.synonyms).get(text.lower(), text.lower())
        if lowered not in sw.choices:
            raise ParseError(f"{sw.name} must be one of {', '.join(sw.choices)}; got {shown_value(text)}")
        return lowered
    return text


def parse_variations(sw: Switch, text: str) -> tuple[tuple[int, float], ...]:
    """`seed:weight,seed:weight` (InvokeAI 2.3), the older `seed,weight;seed,weight` that real images carry, or
    `seed,weight,seed,weight` (as 2.3's variations page writes a chain)."""
    items = text.split(",")
    if ":" not in text and ";" not in text and len(items) > 2 and len(items) % 2 == 0:
        pairs = [items[i:i + 2] for i in range(0, len(items), 2)]  # 2.3's docs: -V3647897225,0.1,1614299449,0.1
    elif ":" in text or ";" not in text and text.count(",") != 1:
        pairs = [p.split(":") for p in text.split(",")]
    else:
        pairs = [p.split(",") for p in text.split(";")]
    try:
        if any(len(p) != 2 for p in pairs):
            raise ValueError
        return tuple((int(seed, 10), float(weight)) for seed, weight in pairs)
    except ValueError:
        raise ParseError(f"{sw.name} expects seed:weight,seed:weight, got {shown_value(text)}") from None


def parse_axes(sw: Switch, text: str) -> tuple[str, ...]:
    """`x`, `y`, `x,y` (also `xy`, `y,x`): the axes named, in table order."""
    letters = [c for c in text.lower() if c not in ", "]
    if not letters or any(c not in sw.choices for c in letters) or len(set(letters)) != len(letters):
        raise ParseError(f"{sw.name} must be {', '.join(sw.choices)} or several of them joined by commas, "
                         f"got {shown_value(text)}")
    return tuple(axis for axis in sw.choices if axis in letters)


MAX_GROWTH = 2048  # pixels one side may grow by


def _check_side(sw: Switch, side: object, pixels: object, optional: bool) -> None:
    if side not in sw.choices:
        raise ParseError(f"{sw.name}: the side must be one of {', '.join(sw.choices)}; got {shown_value(side)}")
    if pixels is None and optional:
        return
    if isinstance(pixels, bool) or not isinstance(pixels, int) or not 1 <= pixels <= MAX_GROWTH:
        raise ParseError(f"{sw.name} {side}: the pixels must be a whole number in [1, {MAX_GROWTH}], got "
                         f"{shown_value(pixels)}")


def _pixels(sw: Switch, text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise ParseError(f"{sw.name} expects {sw.metavar} (a side, then pixels), got {shown_value(text)}") from None


def parse_outcrop(sw: Switch, text: str) -> tuple[tuple[str, int], ...]:
    """`top 64 bottom 128` (2.3's nargs form, several sides at once): ((side, pixels), ...)."""
    words = text.split()
    if not words or len(words) % 2:
        raise ParseError(f"{sw.name} expects a side and pixels, for each side: top 64 left 32; got {shown_value(text)}")
    return tuple((words[i].lower(), _pixels(sw, words[i + 1])) for i in range(0, len(words), 2))


def parse_direction(sw: Switch, text: str) -> tuple[str, int | None]:
    """`top` or `top 64` (2.3's -D): (side, pixels or None)."""
    words = text.split()
    if not 1 <= len(words) <= 2:
        raise ParseError(f"{sw.name} expects a side and, if wanted, pixels: top 64; got {shown_value(text)}")
    return words[0].lower(), _pixels(sw, words[1]) if len(words) == 2 else None


# --embiggen's numbers: scale, the upscaler's strength, the tiles' overlap (a fraction of a tile)
EMBIGGEN_RANGES = ((1.0, 8.0), (0.0, 1.0), (0.0, 0.5))
MAX_TILE_NUMBER = 10_000


def parse_numbers(sw: Switch, text: str) -> tuple:
    """Several numbers (2.3's nargs='+'): `2.5 0.75 0.25`, or tile numbers `1 3 5`."""
    kind = "number" if sw.kind == "floats" else "whole number"
    try:
        return tuple(float(w) if sw.kind == "floats" else int(w, 10) for w in text.replace(",", " ").split())
    except ValueError:
        raise ParseError(f"{sw.name} expects {kind}s ({sw.metavar}), got {shown_value(text)}") from None


def _check_numbers(sw: Switch, value: object) -> None:
    if not isinstance(value, tuple) or not value:
        raise ParseError(f"{sw.name} expects {sw.metavar}, got {shown_value(value)}")
    if sw.kind == "ints":
        if any(isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_TILE_NUMBER for v in value):
            raise ParseError(f"{sw.name}: tile numbers count from 1, got {shown_value(value)}")
        if len(set(value)) != len(value):
            raise ParseError(f"{sw.name} names a tile twice: {shown_value(value)}")
        return
    if len(value) > len(EMBIGGEN_RANGES):
        raise ParseError(f"{sw.name} takes at most 3 numbers (SCALE UPSCALE_STRENGTH OVERLAP), got {len(value)}")
    names = ("the scale", "the upscale strength", "the overlap")
    for number, (lo, hi), name in zip(value, EMBIGGEN_RANGES, names):
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not lo <= number <= hi:
            raise ParseError(f"{sw.name}: {name} must be in [{lo:g}, {hi:g}], got {shown_value(number)}")


UPSCALE_STRENGTH = 0.75  # 2.3's default for -U's second number
MAX_UPSCALE = 8.0
TEXT_MASK_THRESHOLD = 0.5  # 2.3's default for -tm's second word


def parse_upscale(sw: Switch, text: str) -> tuple[float, float]:
    """-U `SCALE [STRENGTH]`: (scale, strength), the strength 0.75 unless given (2.3's)."""
    try:
        numbers = tuple(float(w) for w in text.replace(",", " ").split())
    except ValueError:
        raise ParseError(f"{sw.name} expects numbers ({sw.metavar}), got {shown_value(text)}") from None
    if not 1 <= len(numbers) <= 2:
        raise ParseError(f"{sw.name} expects {sw.metavar} (one or two numbers), got {shown_value(text)}")
    return float(numbers[0]), float(numbers[1]) if len(numbers) == 2 else UPSCALE_STRENGTH


def parse_text_mask(sw: Switch, text: str) -> tuple[str, float]:
    """-tm `TEXT [THRESHOLD]`: (text, threshold); the last word is the threshold when it is a number."""
    words = text.split()
    threshold = TEXT_MASK_THRESHOLD
    if len(words) > 1:
        try:
            threshold = float(words[-1])
            words = words[:-1]
        except ValueError:
            pass
    return " ".join(words), threshold


# the switch kinds whose text needs a parser of its own: kind -> parse(switch, text)
PARSERS = {"variations": parse_variations, "axes": parse_axes, "outcrop": parse_outcrop, "floats": parse_numbers,
           "ints": parse_numbers, "direction": parse_direction, "upscale": parse_upscale,
           "textmask": parse_text_mask}


def _check_pair(sw: Switch, value: object) -> None:
    if not isinstance(value, tuple) or len(value) != 2 or isinstance(value[1], bool) \
            or not isinstance(value[1], (int, float)):
        raise ParseError(f"{sw.name} expects {sw.metavar}, got {shown_value(value)}")
    first, second = value
    if sw.kind == "upscale":
        if isinstance(first, bool) or not isinstance(first, (int, float)) or not 1 <= first <= MAX_UPSCALE:
            raise ParseError(f"{sw.name}: the scale must be in [1, {MAX_UPSCALE:g}], got {shown_value(first)}")
        if not 0 <= second <= 1:
            raise ParseError(f"{sw.name}: the strength must be in [0, 1], got {shown_value(second)}")
        return
    if not isinstance(first, str) or not first.strip():
        raise ParseError(f'{sw.name} needs the TEXT to look for: -tm "a red hat" [THRESHOLD]')
    if len(first) > 200:
        raise ParseError(f"{sw.name}: the text has {len(first)} characters; at most 200 are allowed")
    check_printable(f"the {sw.name} text", first)
    if not 0 <= second <= 1:
        raise ParseError(f"{sw.name}: the threshold must be in [0, 1], got {shown_value(second)}")


def format_switch(sw: Switch, value: object) -> str:
    """A switch and its value as the canonical command writes them."""
    if sw.kind == "flag":
        return sw.long[0]
    if isinstance(value, float):
        return f"{sw.canonical} {value!r}"
    if sw.kind == "variations":
        return f"{sw.canonical} " + ",".join(f"{seed}:{weight!r}" for seed, weight in value)
    if sw.kind == "axes":
        return f"{sw.canonical} " + ",".join(value)
    if sw.kind == "outcrop":
        return f"{sw.canonical} " + " ".join(f"{side} {pixels}" for side, pixels in value)
    if sw.kind in ("floats", "ints"):
        return f"{sw.canonical} " + " ".join(repr(v) for v in value)
    if sw.kind == "direction":
        return f"{sw.canonical} " + " ".join(str(v) for v in value if v is not None)
    if sw.kind == "upscale":
        return f"{sw.canonical} {value[0]!r} {value[1]!r}"
    if sw.kind == "textmask":
        return f"{sw.canonical} {shlex.quote(value[0])} {value[1]!r}"
    text = str(value)
    if sw.kind == "path" and re.match(r"--?[A-Za-z]", text):
        return f"{sw.long[0]}={shlex.quote(text)}"  # a path that starts like a switch
    return f"{sw.canonical} {shlex.quote(text)}"
