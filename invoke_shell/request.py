"""The generation request: parse a command line into a frozen GenerationRequest and write it back.

`parse(to_command(r), d) == r` holds for every valid request and any defaults `d`: the canonical
command spells out every field that is set. Nothing here imports torch.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from dataclasses import dataclass, fields
from functools import cached_property

from .errors import ParseError
from .prompt_extras import PromptExtras, extract
from .switches import BY_DEST, BY_SPELLING, SEED_LIMIT, SWITCHES, UNSUPPORTED, Switch, unsupported_message

MAX_PROMPT_CHARS = 2000
REFINER_START = 0.8  # --refiner_start's default: the base runs the first 80% of the schedule
# Stable Diffusion's VAE decoder holds about this much per output pixel at its peak in float32 (measured:
# 3.9 kB at 512 x 512); the refusal of a too-large size says what the size would need
DECODE_BYTES_PER_PIXEL = 4000
ASSUMED_SIDE = 512  # a side not given, for that estimate
_SWITCH_START = re.compile(r"\s--?[A-Za-z]")
_LOOKS_LIKE_SWITCH = re.compile(r"--?[A-Za-z]")
_BACK_REFERENCE = re.compile(r"-[1-9][0-9]*")
_NEGATIVE = re.compile(r"\[([^\[\]]*)\]")
# short spellings, longest first, so that "-ft" wins over "-f" when a value is glued on ("-f0.7")
_SHORT_PREFIXES = sorted((s for s in list(BY_SPELLING) + list(UNSUPPORTED) if not s.startswith("--")),
                         key=len, reverse=True)


@dataclass(frozen=True)
class Defaults:
    """The session's defaults for switches not given on a line (launch options; not sticky)."""

    steps: int = 50
    cfg_scale: float = 7.5
    sampler: str = "k_lms"
    strength: float = 0.75
    width: int | None = None   # None: the model's native size, or the init image's own size
    height: int | None = None
    fit: bool = False
    precision: str = "auto"    # the launch --precision; a line's --precision overrides it for that line


@dataclass(frozen=True)
class GenerationRequest:
    """One generation command. Change it with `dataclasses.replace`; every instance is validated."""

    prompt: str
    steps: int
    cfg_scale: float
    sampler: str
    seed: int | None = None        # None: random; negative: back-reference to the previous command's images
    width: int | None = None       # None: the model's size, or the init image's own size
    height: int | None = None
    init_img: str | None = None    # a path, or "-1", "-2"...: the previous command's images
    strength: float | None = None  # set whenever init_img is
    init_mask: str | None = None   # inpainting: a mask image for init_img
    invert_mask: bool = False
    fit: bool = False
    compensate_steps: bool = False  # img2img: -s counts the steps run from the init image
    iterations: int | None = None  # None: one image
    grid: bool = False
    variation_amount: float | None = None
    with_variations: tuple[tuple[int, float], ...] | None = None  # ((sub-seed, weight), ...)
    save_intermediates: int | None = None
    strip: bool = False
    log_tokenization: bool = False
    skip_normalize: bool = False   # InvokeAI 2.3's `a:0.5 b:0.5` blends keep their raw weights
    clip_skip: int | None = None   # None: 1, the text encoder's last layer
    refiner: str | None = None     # SDXL: a refiner model for the end of the schedule
    refiner_start: float | None = None  # set whenever refiner is (0.8 unless given)
    outdir: str | None = None      # None: the session's output folder
    png_compression: int | None = None  # None: zlib's level 6
    precision: str | None = None   # None: the session's --precision

    def __post_init__(self) -> None:
        check_prompt(self.prompt)
        self.extras  # read now: a bad LoRA name or weight is told here, before anything runs
        check_size(self.width, self.height)
        for sw in SWITCHES:
            value = getattr(self, sw.dest)
            if value is not None:
                check_value(sw, value)
        most = int(BY_DEST["iterations"].range.hi)  # a back-reference reaches at most the images of one command
        for switch, reference in (("-S/--seed", self.seed_reference), ("-I/--init_img", self.init_img_reference)):
            if reference is not None and reference < -most:
                raise ParseError(f"{switch} {shown_value(reference)}: a back-reference reaches at most -{most}, "
                                 f"the most images one command makes")
        if self.init_img is not None and self.strength is None:
            raise ParseError("-f/--strength must be set when -I/--init_img is")
        if self.init_mask is not None and self.init_img is None:
            raise ParseError("-M/--init_mask needs an init image to repaint: add -I/--init_img")
        if self.invert_mask and self.init_img is None:
            raise ParseError("--invert_mask needs an init image with a mask: add -I/--init_img (and -M/--init_mask)")
        if self.refiner_start is not None and self.refiner is None:
            raise ParseError("--refiner_start needs --refiner NAME: the refiner model that takes over")
        if self.refiner is not None and self.refiner_start is None:
            raise ParseError("--refiner needs --refiner_start (the parser sets 0.8)")
        if self.refiner is not None and (self.init_img is not None or self.strip or self.save_intermediates):
            raise ParseError("--refiner runs after a txt2img schedule; not with -I/--init_img, --strip or "
                             "--save_intermediates yet")
        if self.with_variations is not None and self.seed is None:
            raise ParseError("-V/--with_variations needs -S/--seed: the chain starts from that seed's noise")
        if self.with_variations is not None and self.variation_amount is None and (self.iterations or 1) > 1:
            raise ParseError("-V/--with_variations without -v makes one image; drop -n or add -v")

    @cached_property
    def extras(self) -> PromptExtras:
        """The LoRAs and embedding triggers the prompt names (prompt_extras.py); read once per request."""
        return extract(self.prompt)

    @property
    def positive_prompt(self) -> str:
        """The prompt without its `[negative]` groups and its LoRA syntax: what the text encoder reads."""
        return " ".join(_NEGATIVE.sub(" ", self.extras.text).split())

    @property
    def negative_prompt(self) -> str:
        """The text of all `[...]` groups, joined by spaces (InvokeAI's rule)."""
        return " ".join(" ".join(m.split()) for m in _NEGATIVE.findall(self.extras.text)).strip()

    @property
    def is_img2img(self) -> bool:
        return self.init_img is not None

    @property
    def seed_reference(self) -> int | None:
        """-1, -2... when the seed refers back to the previous command's images."""
        return self.seed if self.seed is not None and self.seed < 0 else None

    @property
    def init_img_reference(self) -> int | None:
        """-1, -2... when the init image refers back to the previous command's images."""
        if self.init_img is not None and _BACK_REFERENCE.fullmatch(self.init_img):
            return int(self.init_img)
        return None


def check_prompt(prompt: str) -> None:
    if not isinstance(prompt, str) or not prompt.strip():
        raise ParseError('a prompt is needed before the switches, e.g. "fire" -s 10')
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ParseError(f"the prompt has {len(prompt)} characters; at most {MAX_PROMPT_CHARS} are allowed")
    _check_printable("the prompt", prompt)


def _check_printable(what: str, text: str) -> None:
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
        _check_printable(f"the {sw.name} path", value)


def _convert(sw: Switch, text: str) -> object:
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
    if sw.kind == "variations":
        return parse_variations(sw, text)
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


def split_prompt(line: str) -> tuple[str, list[str]]:
    """Split a command line into the prompt and the switch tokens, InvokeAI's way: a quoted prompt is
    the first shell word; an unquoted one runs up to the first whitespace followed by `-x` or `--x`."""
    text = line.strip()
    try:
        if text.startswith(('"', "'")):
            tokens = shlex.split(text, comments=True)
            return (tokens[0], tokens[1:]) if tokens else ("", [])
        if text.startswith("-"):
            return "", shlex.split(text, comments=True)
        match = _SWITCH_START.search(text)
        if match is None:
            return text, []
        return text[: match.start()].strip(), shlex.split(text[match.start():], comments=True)
    except ValueError as exc:  # shlex: "No closing quotation" / "No escaped character"
        raise ParseError(f"cannot split the line into words ({str(exc).lower()}): check the quotes") from None


def _lookup(token: str) -> tuple[Switch, str | None]:
    """The switch a token names, and the value glued to it (`--steps=10`, `-s10`), if any."""
    if token.startswith("--"):
        name, eq, glued = token.partition("=")
        if name in BY_SPELLING:
            return BY_SPELLING[name], (glued if eq else None)
        if name in UNSUPPORTED:
            raise ParseError(unsupported_message(name))
        raise ParseError(f"unknown switch {shown_value(name)}; type !help for the list")
    if not _LOOKS_LIKE_SWITCH.match(token):
        raise ParseError(f"unexpected {shown_value(token)} after the switches: put the whole prompt first, or quote it")
    name, eq, glued = token.partition("=")
    if eq and name in BY_SPELLING:
        return BY_SPELLING[name], glued
    for prefix in _SHORT_PREFIXES:
        if token.startswith(prefix):
            if prefix in UNSUPPORTED:
                raise ParseError(unsupported_message(prefix))
            rest = token[len(prefix):]
            return BY_SPELLING[prefix], (rest if rest else None)
    raise ParseError(f"unknown switch {shown_value(token)}; type !help for the list")


def parse_switches(tokens: list[str]) -> dict[str, object]:
    """Turn switch tokens into {dest: value}, converted but not range-checked. Later switches win."""
    values: dict[str, object] = {}
    i = 0
    while i < len(tokens):
        sw, glued = _lookup(tokens[i])
        i += 1
        if sw.kind == "flag":
            if glued:
                raise ParseError(f"{sw.name} takes no value, got {shown_value(glued)}")
            values[sw.dest] = True
            continue
        if glued is None:
            if i >= len(tokens) or _LOOKS_LIKE_SWITCH.match(tokens[i]):
                raise ParseError(f"{sw.name} needs a value ({sw.metavar})")
            glued = tokens[i]
            i += 1
        values[sw.dest] = _convert(sw, glued)
    return values


def parse(line: str, defaults: Defaults = Defaults()) -> GenerationRequest:
    """Parse one generation command; raises ParseError with a one-line message."""
    prompt, tokens = split_prompt(line)
    check_prompt(prompt)  # a line of switches alone (or a lone `-`) is told it lacks a prompt first
    values = parse_switches(tokens)
    for name in ("steps", "cfg_scale", "sampler", "width", "height", "fit"):
        values.setdefault(name, getattr(defaults, name))
    if values.get("init_img") is not None:
        values.setdefault("strength", defaults.strength)
    if values.get("refiner") is not None:
        values.setdefault("refiner_start", REFINER_START)
    return GenerationRequest(prompt=prompt, **values)


def quote_prompt(prompt: str) -> str:
    return '"' + prompt.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _format(sw: Switch, value: object) -> str:
    if sw.kind == "flag":
        return sw.long[0]
    if isinstance(value, float):
        return f"{sw.canonical} {value!r}"
    if sw.kind == "variations":
        return f"{sw.canonical} " + ",".join(f"{seed}:{weight!r}" for seed, weight in value)
    text = str(value)
    if sw.kind == "path" and _LOOKS_LIKE_SWITCH.match(text):
        return f"{sw.long[0]}={shlex.quote(text)}"  # a path that starts like a switch
    return f"{sw.canonical} {shlex.quote(text)}"


def to_command(request: GenerationRequest) -> str:
    """The canonical command: the prompt quoted, then every switch that is set, in table order."""
    parts = [quote_prompt(request.prompt)]
    for sw in SWITCHES:
        value = getattr(request, sw.dest)
        if value is None or value is False:
            continue
        parts.append(_format(sw, value))
    return " ".join(parts)


def request_fields() -> tuple[str, ...]:
    return tuple(f.name for f in fields(GenerationRequest))


assert set(BY_DEST) <= set(request_fields()), "every switch in the table is a request field"
