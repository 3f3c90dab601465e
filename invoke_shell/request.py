"""The generation request: parse a command line into a frozen GenerationRequest and write it back.

`parse(to_command(r), d) == r` holds for every valid request and any defaults `d`: the canonical
command spells out every field that is set. Nothing here imports torch.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, fields
from functools import cached_property

from .errors import ParseError
from .prompt_extras import PromptExtras, extract
from .fnformat import file_name
from .switch_values import check_printable, check_size, check_value, convert, format_switch, shown_value
from .switches import BY_DEST, BY_SPELLING, SWITCHES, UNSUPPORTED, Switch, unsupported_message

MAX_PROMPT_CHARS = 2000
REFINER_START = 0.8  # --refiner_start's default: the base runs the first 80% of the schedule
OUTCROP_STRENGTH = 0.9  # -f's default when outpainting: 2.3 painted the new area at 0.9 whatever -f said
EMBIGGEN_STRENGTH = 0.4  # -f's default with --embiggen: 2.3's --embiggen_strength default, each tile's strength
HIRES_STRENGTH = 0.75  # --hires_strength's default: InvokeAI 2.3 refined at -f's default, 0.75
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
    grid: bool = False         # the launch --grid: a grid for every command of several images (-i: not this one)
    fnformat: str | None = None  # the launch --fnformat
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
    text_mask: tuple[str, float] | None = None  # inpainting: the mask is where CLIPSeg finds (text, threshold)
    fit: bool = False
    compensate_steps: bool = False  # img2img: -s counts the steps run from the init image
    iterations: int | None = None  # None: one image
    grid: bool = False
    individual: bool = False       # no grid for this command (a launch --grid)
    variation_amount: float | None = None
    with_variations: tuple[tuple[int, float], ...] | None = None  # ((sub-seed, weight), ...)
    save_intermediates: int | None = None
    strip: bool = False
    log_tokenization: bool = False
    skip_normalize: bool = False   # InvokeAI 2.3's `a:0.5 b:0.5` blends keep their raw weights
    clip_skip: int | None = None   # None: 1, the text encoder's last layer
    refiner: str | None = None     # SDXL: a refiner model for the end of the schedule
    refiner_start: float | None = None  # set whenever refiner is (0.8 unless given)
    outcrop: tuple[tuple[str, int], ...] | None = None  # outpainting: ((side, pixels), ...)
    out_direction: tuple[str, int | None] | None = None  # 2.3's older outpainting: (side, pixels or None: half)
    force_outpaint: bool = False   # outpaint the init image's transparent areas
    seam_size: int | None = None   # outpainting's seam switches; None: 2.3's defaults scaled to the model
    seam_blur: int | None = None
    seam_strength: float | None = None
    seam_steps: int | None = None
    tile_size: int | None = None
    embiggen: tuple[float, ...] | None = None  # (scale[, upscale strength[, overlap]])
    embiggen_tiles: tuple[int, ...] | None = None  # refine only these tiles
    embiggen_strength: float | None = None  # each tile's strength (None: -f)
    facetool_strength: float | None = None  # -G: restore faces, blended in this much
    facetool: str | None = None    # -G's face restorer (a models.yaml name); filled in when a command runs
    codeformer_fidelity: float | None = None  # -G with CodeFormer
    upscale: tuple[float, float] | None = None  # -U: (scale, strength)
    upscaler: str | None = None    # -U's upscaler (a models.yaml name); filled in when a command runs
    save_original: bool = False    # with -U/-G: keep the picture from before them too
    init_color: str | None = None  # match the result's colours to this image
    karras_max: int | None = None  # InvokeAI 2.3's: Karras sigmas below this many steps
    perlin: float | None = None    # InvokeAI 2.3's Perlin noise mix
    threshold: float | None = None  # InvokeAI 2.3's latent thresholding
    h_symmetry_time_pct: float | None = None  # mirror left onto right at this fraction of the run
    v_symmetry_time_pct: float | None = None  # mirror top onto bottom
    hires_fix: bool = False        # two passes: the model's size first, then enlarged and refined
    hires_strength: float | None = None  # set whenever hires_fix is (0.75 unless given)
    hires_method: str | None = None      # set whenever hires_fix is ("latent" unless given)
    seamless: bool = False         # the picture tiles (circular padding)
    seamless_axes: tuple[str, ...] | None = None  # set whenever seamless is: ("x",), ("y",) or ("x", "y")
    outdir: str | None = None      # None: the session's output folder
    fnformat: str | None = None    # None: {prefix}.{seed}.png
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
        if (self.hires_strength is None or self.hires_method is None) != (not self.hires_fix):
            raise ParseError("--hires_fix needs --hires_strength and --hires_method (the parser sets them)")
        if self.hires_fix and self.init_img is not None and self.strength != self.hires_strength:
            raise ParseError(f"with -I/--init_img, --hires_fix refines the picture at --hires_strength "
                             f"{self.hires_strength:g}, and -f/--strength says {self.strength:g}: give one of them")
        if self.hires_fix and self.init_img is not None and self.hires_method != "lanczos":
            raise ParseError("with -I/--init_img, --hires_fix enlarges the picture itself: --hires_method lanczos "
                             "(latent needs a first pass made here)")
        if self.hires_fix and (self.init_mask is not None or self.invert_mask):
            raise ParseError("--hires_fix enlarges the whole picture; not with -M/--init_mask or --invert_mask")
        if self.hires_fix and (self.refiner is not None or self.strip or self.save_intermediates):
            raise ParseError("--hires_fix runs two passes; not with --refiner, --strip or --save_intermediates yet")
        outpainting = self.outcrop is not None or self.out_direction is not None or self.force_outpaint
        if outpainting and self.init_img is None:
            raise ParseError("-c/--outcrop, -D/--out_direction and --force_outpaint paint around a picture: add "
                             "-I/--init_img")
        if self.outcrop is not None and self.out_direction is not None:
            raise ParseError("-c/--outcrop and -D/--out_direction both grow the canvas: give one of them")
        if outpainting and (self.init_mask is not None or self.invert_mask):
            raise ParseError("outpainting paints the new area (or the transparent one); not with -M/--init_mask "
                             "or --invert_mask")
        seams = [f"--{name}" for name in ("seam_size", "seam_blur", "seam_strength", "seam_steps", "tile_size")
                 if getattr(self, name) is not None]
        if seams and not outpainting:
            raise ParseError(f"{seams[0]} shapes outpainting: add -c/--outcrop, -D/--out_direction or "
                             "--force_outpaint")
        if outpainting and (self.hires_fix or self.strip or self.save_intermediates):
            raise ParseError("outpainting runs two passes (the new area, then the seam); not with --hires_fix, "
                             "--strip or --save_intermediates yet")
        if (self.embiggen_tiles is not None or self.embiggen_strength is not None) and self.embiggen is None:
            raise ParseError("--embiggen_tiles and --embiggen_strength shape --embiggen: add --embiggen SCALE")
        if self.embiggen is not None and self.init_img is None:
            raise ParseError("--embiggen enlarges a picture: add -I/--init_img (or run !fix on a PNG)")
        if self.embiggen is not None and (outpainting or self.hires_fix or self.init_mask is not None
                                          or self.strip or self.save_intermediates):
            raise ParseError("--embiggen refines tile by tile; not with outpainting, --hires_fix, -M/--init_mask, "
                             "--strip or --save_intermediates")
        self._check_postprocessing(outpainting)
        if self.individual and self.grid:
            raise ParseError("-i/--individual asks for no grid and -g/--grid for one: give one of them")
        if self.fnformat is not None:
            file_name(self, "000001", "model")  # a placeholder it does not know is told here
        if self.seamless_axes is not None and not self.seamless:
            raise ParseError("--seamless_axes needs --seamless (the parser sets it)")
        if self.with_variations is not None and self.seed is None:
            raise ParseError("-V/--with_variations needs -S/--seed: the chain starts from that seed's noise")
        if self.with_variations is not None and self.variation_amount is None and (self.iterations or 1) > 1:
            raise ParseError("-V/--with_variations without -v makes one image; drop -n or add -v")

    def _check_postprocessing(self, outpainting: bool) -> None:
        """-U, -G and -tm: what each needs, and what they cannot go with."""
        if self.upscaler is not None and self.upscale is None and (self.embiggen or (1,))[0] <= 1:
            raise ParseError("--upscaler names the model -U/--upscale (or --embiggen SCALE, above 1) enlarges with: "
                             "add -U SCALE")
        if self.upscaler == "lanczos" and self.upscale is not None:
            raise ParseError("--upscaler lanczos is --embiggen's enlargement without a model; -U enlarges with an "
                             "upscaler model: name one, or drop --upscaler for the default")
        if (self.facetool is not None or self.codeformer_fidelity is not None) and not self.facetool_strength:
            raise ParseError(f"{'-ft/--facetool' if self.facetool else '-cf/--codeformer_fidelity'} shapes face "
                             "restoration: add -G/--facetool_strength STRENGTH (above 0)")
        if self.save_original and self.upscale is None and not self.facetool_strength:
            raise ParseError("--save_original keeps the picture from before -U/--upscale or -G/--facetool_strength: "
                             "add one of them")
        if self.text_mask is not None:
            if self.init_img is None:
                raise ParseError("-tm/--text_mask finds what to repaint in a picture: add -I/--init_img")
            if self.init_mask is not None:
                raise ParseError("-tm/--text_mask and -M/--init_mask both give the mask: give one of them")
            if outpainting or self.hires_fix or self.embiggen is not None:
                raise ParseError("-tm/--text_mask repaints part of the -I picture; not with outpainting, "
                                 "--hires_fix or --embiggen")

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
    check_printable("the prompt", prompt)


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


def _by_prefix(name: str) -> Switch:
    """The switch whose long spelling `name` begins, as 2.3's argparse allowed (`--iter`, `--variation`); one line
    naming the candidates when it begins several, or none."""
    if len(name) < 3:
        raise ParseError(f"unknown switch {shown_value(name)}; type !help for the list")
    candidates = sorted({sw.long[0] for spelling, sw in BY_SPELLING.items()
                         if spelling.startswith("--") and spelling.startswith(name)} |
                        {spelling for spelling in UNSUPPORTED if spelling.startswith("--") and spelling.startswith(name)})
    if len(candidates) == 1:
        if candidates[0] in UNSUPPORTED:
            raise ParseError(unsupported_message(candidates[0]))
        return BY_SPELLING[candidates[0]]
    if len(candidates) > 1:
        raise ParseError(f"{shown_value(name)} could be {', '.join(candidates[:6])}"
                         f"{', ...' if len(candidates) > 6 else ''}: type more of it")
    raise ParseError(f"unknown switch {shown_value(name)}; type !help for the list")


def _lookup(token: str) -> tuple[Switch, str | None]:
    """The switch a token names, and the value glued to it (`--steps=10`, `-s10`), if any."""
    if token.startswith("--"):
        name, eq, glued = token.partition("=")
        if name in BY_SPELLING:
            return BY_SPELLING[name], (glued if eq else None)
        if name in UNSUPPORTED:
            raise ParseError(unsupported_message(name))
        return _by_prefix(name), (glued if eq else None)
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
        while sw.nargs and i < len(tokens) and not _LOOKS_LIKE_SWITCH.match(tokens[i]):
            glued += " " + tokens[i]  # 2.3's nargs='+': the words up to the next switch
            i += 1
        values[sw.dest] = convert(sw, glued)
    return values


def parse(line: str, defaults: Defaults = Defaults()) -> GenerationRequest:
    """Parse one generation command; raises ParseError with a one-line message."""
    prompt, tokens = split_prompt(line)
    check_prompt(prompt)  # a line of switches alone (or a lone `-`) is told it lacks a prompt first
    values = parse_switches(tokens)
    for name in ("steps", "cfg_scale", "sampler", "width", "height", "fit", "fnformat"):
        values.setdefault(name, getattr(defaults, name))
    if not values.get("individual"):
        values.setdefault("grid", defaults.grid)
    if values.get("hires_strength") is not None or values.get("hires_method") is not None:
        values["hires_fix"] = True
    if values.get("hires_fix") and values.get("init_img") is not None:  # the picture is the first pass
        if "strength" in values:
            values.setdefault("hires_strength", values["strength"])
        values.setdefault("hires_strength", HIRES_STRENGTH)
        values.setdefault("strength", values["hires_strength"])
        values.setdefault("hires_method", "lanczos")
    if values.get("init_img") is not None and (values.get("outcrop") or values.get("out_direction")
                                               or values.get("force_outpaint")):
        values.setdefault("strength", OUTCROP_STRENGTH)
    if values.get("embiggen_tiles") is not None:  # 2.3's way to redo tiles of a picture embiggen made: at its size
        values.setdefault("embiggen", (1.0,))
    if values.get("init_img") is not None and values.get("embiggen"):
        values.setdefault("strength", EMBIGGEN_STRENGTH)
    if values.get("init_img") is not None:
        values.setdefault("strength", defaults.strength)
    if values.get("refiner") is not None:
        values.setdefault("refiner_start", REFINER_START)
    if values.get("hires_fix"):
        values.setdefault("hires_strength", HIRES_STRENGTH)
        values.setdefault("hires_method", BY_DEST["hires_method"].choices[0])
    if values.get("seamless_axes") is not None:
        values["seamless"] = True
    if values.get("seamless"):
        values.setdefault("seamless_axes", BY_DEST["seamless_axes"].choices)
    return GenerationRequest(prompt=prompt, **values)


def quote_prompt(prompt: str) -> str:
    return '"' + prompt.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_command(request: GenerationRequest) -> str:
    """The canonical command: the prompt quoted, then every switch that is set, in table order."""
    parts = [quote_prompt(request.prompt)]
    for sw in SWITCHES:
        value = getattr(request, sw.dest)
        if value is None or value is False:
            continue
        parts.append(format_switch(sw, value))
    return " ".join(parts)


def request_fields() -> tuple[str, ...]:
    return tuple(f.name for f in fields(GenerationRequest))


assert set(BY_DEST) <= set(request_fields()), "every switch in the table is a request field"
