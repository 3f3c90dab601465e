"""THE switch table: one entry per generation switch.

The line parser (request.py), the launch parser (__main__.py), completion, `!help` and the canonical
command written into every PNG all read this table, so they cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .samplers import NAMES, SYNONYMS

SAMPLERS = NAMES  # from the sampler table (samplers.py)
SEED_LIMIT = 2**32
PRECISIONS = ("auto", "float32", "float16", "bfloat16")
SEAMLESS_AXES = ("x", "y")
HIRES_METHODS = ("latent", "lanczos")
OUTCROP_SIDES = ("top", "bottom", "left", "right")


@dataclass(frozen=True)
class Range:
    """A numeric interval; `describe()` prints it the way error messages show it: `(0, 1]`."""

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False

    def contains(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        above = value > self.lo if self.lo_open else value >= self.lo
        below = value < self.hi if self.hi_open else value <= self.hi
        return above and below

    def describe(self) -> str:
        def num(x: float) -> str:
            return str(int(x)) if float(x).is_integer() else repr(x)

        return f"{'(' if self.lo_open else '['}{num(self.lo)}, {num(self.hi)}{')' if self.hi_open else ']'}"


@dataclass(frozen=True)
class Switch:
    """One switch. `kind` is int, float, str, path, choice, flag, variations (a -V chain) or axes (a
    comma-separated subset of `choices`); `launch` marks the switches that
    also set a session default when given to `invoke-shell` itself."""

    dest: str
    short: tuple[str, ...]
    long: tuple[str, ...]
    kind: str
    help: str
    metavar: str = ""
    choices: tuple[str, ...] = ()
    range: Range | None = None
    launch: bool = False
    completes: str = ""  # what the completer offers for the value ("image", "dir", "seed"); choices: those
    synonyms: tuple[tuple[str, str], ...] = ()  # (another name, the choice it means), e.g. InvokeAI 3's samplers
    nargs: bool = False  # takes several words (`-c top 64 left 32`), up to the next switch, as 2.3's nargs='+'

    @property
    def name(self) -> str:
        """`-s/--steps`: how messages name the switch (flags by their long name)."""
        return self.long[0] if self.kind == "flag" else "/".join(self.short[:1] + self.long[:1])

    @property
    def spellings(self) -> tuple[str, ...]:
        return self.short + self.long

    @property
    def canonical(self) -> str:
        """The spelling written into canonical commands (InvokeAI's: short where there is one, long flags)."""
        return self.long[0] if self.kind == "flag" or not self.short else self.short[0]


SWITCHES: tuple[Switch, ...] = (
    Switch("steps", ("-s",), ("--steps",), "int", "number of sampler steps", "N",
           range=Range(1, 1000), launch=True),
    Switch("seed", ("-S",), ("--seed",), "int",
           "image seed in [0, 2^32); random when absent; -1 = seed of the previous command's last image, -2 the one before",
           "SEED", completes="seed"),
    Switch("width", ("-W",), ("--width",), "int", "image width in pixels (floored to what the model accepts)", "W",
           range=Range(8, 4096), launch=True),
    Switch("height", ("-H",), ("--height",), "int", "image height in pixels (floored to what the model accepts)", "H",
           range=Range(8, 4096), launch=True),
    Switch("cfg_scale", ("-C",), ("--cfg_scale",), "float", "classifier-free guidance scale", "SCALE",
           range=Range(0, 100, lo_open=True), launch=True),
    Switch("sampler", ("-A", "-m"), ("--sampler",), "choice",
           "sampler (diffusers scheduler); InvokeAI 3's names work too (euler, dpmpp_2m, ...)", "NAME",
           choices=SAMPLERS, launch=True, synonyms=tuple(SYNONYMS.items())),
    Switch("init_img", ("-I",), ("--init_img",), "path",
           "init image for img2img; -1 = the previous command's last image", "PATH", completes="image"),
    Switch("strength", ("-f",), ("--strength",), "float",
           "img2img strength: the last int(steps * strength) steps run from the noised init image", "F",
           range=Range(0, 1, lo_open=True), launch=True),
    Switch("init_mask", ("-M",), ("--init_mask",), "path",
           "inpainting mask for -I: transparent (or, without alpha, black) areas are repainted, the rest kept",
           "PATH", completes="image"),
    Switch("invert_mask", (), ("--invert_mask",), "flag",
           "inpainting: repaint the opaque (white) areas of the mask instead, keep the rest"),
    Switch("text_mask", ("-tm",), ("--text_mask",), "textmask",
           "inpaint where the -I picture shows TEXT, as CLIPSeg (models.yaml format: text_mask) finds it: "
           "the points it is at least THRESHOLD sure of (default 0.5); quote a TEXT of several words",
           "TEXT [THRESHOLD]", nargs=True),
    Switch("fit", ("-T", "-fit"), ("--fit",), "flag", "fit the init image inside W x H, keeping its aspect ratio",
           launch=True),
    Switch("compensate_steps", (), ("--compensate_steps",), "flag",
           "img2img: -s counts the steps run from the init image; the schedule grows to give them"),
    Switch("iterations", ("-n",), ("--iterations",), "int",
           "images to make; with -S S, image k (from 0) has seed S+k; without -S, random seeds", "N",
           range=Range(1, 64)),
    Switch("grid", ("-g",), ("--grid",), "flag", "also save the -n images as one grid PNG", launch=True),
    Switch("individual", ("-i",), ("--individual",), "flag",
           "no grid for this command, when the shell was started with --grid (the images are always saved)"),
    Switch("variation_amount", ("-v",), ("--variation_amount",), "float",
           "make variations of the seed: mix this much of a sub-seed's noise into it (with -S the sub-seeds "
           "follow from the command)", "AMOUNT",
           range=Range(0, 1, lo_open=True)),
    Switch("with_variations", ("-V",), ("--with_variations",), "variations",
           "replay a variation chain on top of -S: seed:weight,seed:weight", "CHAIN"),
    Switch("save_intermediates", (), ("--save_intermediates",), "int",
           "write a preview of every Nth step (and the last) under <outdir>/intermediates/<prefix>/", "N",
           range=Range(1, 1000)),
    Switch("strip", (), ("--strip",), "flag",
           "write one labelled picture of the run: the noised start, each step run, the final image"),
    Switch("log_tokenization", ("-t",), ("--log_tokenization",), "flag",
           "show how the prompt is split into tokens, and what is dropped past 75"),
    Switch("skip_normalize", ("-x",), ("--skip_normalize",), "flag",
           "InvokeAI 2.3's `a cat:0.5 a dog:0.5` blends: use the weights as given instead of scaling them to sum to 1"),
    Switch("clip_skip", (), ("--clip_skip",), "int",
           "text encoder layer the prompt is read from, counted from the last, as A1111's Clip skip: 1 = the "
           "last (no skip), 2 = the one before", "N", range=Range(1, 12)),
    Switch("refiner", (), ("--refiner",), "str",
           "SDXL: hand the latents to this refiner model (from models.yaml) for the end of the schedule", "NAME",
           completes="model"),
    Switch("refiner_start", (), ("--refiner_start",), "float",
           "SDXL with --refiner: the fraction of the schedule after which the refiner takes over; default 0.8", "F",
           range=Range(0, 1, lo_open=True, hi_open=True)),
    Switch("outcrop", ("-c",), ("--outcrop",), "outcrop",
           "outpaint: grow the -I picture's canvas by N pixels on each side named (top, bottom, left, right; "
           "several at once) and paint the new area", "SIDE N", choices=OUTCROP_SIDES, nargs=True),
    Switch("out_direction", ("-D",), ("--out_direction",), "direction",
           "outpaint (2.3's older form): grow the -I picture towards one side, by N pixels or half the picture",
           "SIDE [N]", choices=OUTCROP_SIDES, nargs=True),
    Switch("force_outpaint", (), ("--force_outpaint",), "flag",
           "outpaint the -I picture's transparent areas: fill them from the picture, paint them, repaint the seam"),
    Switch("seam_size", (), ("--seam_size",), "int",
           "outpainting: width of the band repainted along the seam; default 96 at 512 px, scaled to the model",
           "N", range=Range(1, 1024)),
    Switch("seam_blur", (), ("--seam_blur",), "int",
           "outpainting: how many pixels the repainted seam is blended over; default 16 at 512 px", "N",
           range=Range(1, 256)),
    Switch("seam_strength", (), ("--seam_strength",), "float",
           "outpainting: img2img strength of the seam's repaint; default 0.7", "F", range=Range(0, 1, lo_open=True)),
    Switch("seam_steps", (), ("--seam_steps",), "int", "outpainting: steps of the seam's repaint; default 10", "N",
           range=Range(1, 1000)),
    Switch("tile_size", (), ("--tile_size",), "int",
           "outpainting: size of the squares cut from the picture to fill the new area; default 32 at 512 px", "N",
           range=Range(1, 512)),
    Switch("embiggen", (), ("--embiggen", "-embiggen"), "floats",
           "enlarge the -I picture SCALE times, then refine it tile by tile at the model's size (or -W x -H): "
           "SCALE [UPSCALE_STRENGTH] [OVERLAP], as 2.3: 2.5 0.75 0.25", "SCALE [S] [O]", nargs=True),
    Switch("embiggen_tiles", (), ("--embiggen_tiles", "-embiggen_tiles"), "ints",
           "--embiggen: refine only these tiles (from 1, left to right, top to bottom)", "N ...", nargs=True),
    Switch("embiggen_strength", (), ("--embiggen_strength",), "float",
           "--embiggen: the img2img strength of each tile; default -f, which defaults to 0.4 with --embiggen", "F",
           range=Range(0, 1, lo_open=True)),
    Switch("facetool_strength", ("-G",), ("--facetool_strength", "--gfpgan_strength"), "float",
           "restore the faces in each picture with a face restorer (models.yaml format: facetool) and blend them "
           "in this much: 0 none, 1 fully", "F", range=Range(0, 1)),
    Switch("facetool", ("-ft",), ("--facetool",), "str",
           "-G's face restorer: a models.yaml name (2.3's gfpgan, codeformer); default: the facetool stanza "
           "marked default, else the first", "NAME", completes="model"),
    Switch("codeformer_fidelity", ("-cf",), ("--codeformer_fidelity",), "float",
           "-G with CodeFormer: 0 favours quality, 1 stays faithful to the picture; default 0.75", "F",
           range=Range(0, 1)),
    Switch("upscale", ("-U",), ("--upscale",), "upscale",
           "enlarge each picture SCALE times with an upscaler model (models.yaml format: upscaler), blended "
           "with a plain enlargement by STRENGTH (default 0.75; 1: the model's alone)", "SCALE [STRENGTH]",
           nargs=True),
    Switch("upscaler", (), ("--upscaler",), "str",
           "-U's (and --embiggen's) upscaler: a models.yaml name; default: the upscaler stanza marked default, "
           "else the first; --embiggen also takes lanczos (no model)",
           "NAME", completes="model"),
    Switch("save_original", ("-save_orig",), ("--save_original",), "flag",
           "with -U or -G: keep each picture as it was too; the processed one is <prefix>.<seed>.postprocessed.png"),
    Switch("init_color", (), ("--init_color",), "path",
           "match the result's colours to this image's (their histograms in LAB), as InvokeAI 2.3 did", "IMAGE",
           completes="image"),
    Switch("karras_max", (), ("--karras_max",), "int",
           "InvokeAI 2.3's: with fewer steps than N, a sampler that has a Karras twin runs with Karras sigmas "
           "(k_lms as lms_k)", "N", range=Range(1, 1000)),
    Switch("perlin", (), ("--perlin",), "float",
           "mix this much Perlin noise into the seed's noise (InvokeAI 2.3's): smoother, larger shapes", "F",
           range=Range(0, 1, lo_open=True)),
    Switch("threshold", (), ("--threshold",), "float",
           "latent thresholding (InvokeAI 2.3's): after each step, values beyond +-T are redrawn below it, "
           "looser over the first 20% of the run; tames high -C scales", "T", range=Range(0, 100, lo_open=True)),
    Switch("h_symmetry_time_pct", (), ("--h_symmetry_time_pct",), "float",
           "at this fraction of the run, mirror the left half onto the right: a left-right symmetric picture",
           "F", range=Range(0, 1, lo_open=True)),
    Switch("v_symmetry_time_pct", (), ("--v_symmetry_time_pct",), "float",
           "at this fraction of the run, mirror the top half onto the bottom: a top-bottom symmetric picture",
           "F", range=Range(0, 1, lo_open=True)),
    Switch("hires_fix", (), ("--hires_fix",), "flag",
           "a picture larger than the model's size: make it at the model's size first, then enlarge it to W x H "
           "and refine it (img2img at --hires_strength), as InvokeAI 2.3 did, so nothing comes out doubled"),
    Switch("hires_strength", (), ("--hires_strength",), "float",
           "--hires_fix: the refinement's img2img strength; default 0.75 (implies --hires_fix)", "F",
           range=Range(0, 1, lo_open=True)),
    Switch("hires_method", (), ("--hires_method",), "choice",
           "--hires_fix: how the first picture is enlarged: latent (its latents, bilinear: 2.3's way; the "
           "default) or lanczos (the picture); implies --hires_fix", "METHOD", choices=HIRES_METHODS),
    Switch("seamless", (), ("--seamless",), "flag",
           "make a picture that tiles: its opposite edges continue each other (both axes unless --seamless_axes)"),
    Switch("seamless_axes", (), ("--seamless_axes",), "axes",
           "the axes --seamless tiles along: x (left/right), y (top/bottom) or x,y; implies --seamless", "AXES",
           choices=SEAMLESS_AXES),
    Switch("outdir", ("-o",), ("--outdir",), "path", "output folder for this command", "DIR", completes="dir"),
    Switch("fnformat", (), ("--fnformat",), "template",
           "file name of each image, from placeholders: {prefix} {seed} {model_id} and any switch's long name "
           "({steps}, {sampler}, {prompt}...); default {prefix}.{seed}.png", "TEMPLATE", launch=True),
    Switch("png_compression", ("-z",), ("--png_compression",), "int",
           "PNG compression level, 0 (none, fastest) to 9 (smallest); the pixels are the same; default 6", "N",
           range=Range(0, 9)),
    Switch("precision", (), ("--precision",), "choice",
           "number type the model runs in; auto: float16 on CUDA, on a CPU the faster of float32 and bfloat16 "
           "for the model (measured once); !fetch adds the one a PNG was made in", "TYPE",
           choices=PRECISIONS, launch=True),
)

BY_DEST: dict[str, Switch] = {s.dest: s for s in SWITCHES}
BY_SPELLING: dict[str, Switch] = {spelling: s for s in SWITCHES for spelling in s.spellings}

# InvokeAI 2.3 switches that invoke-shell does not (yet) build: named, never silently ignored.
UNSUPPORTED: dict[str, str] = {
    "-r": "--inpaint_replace", "--inpaint_replace": "--inpaint_replace",
    "--use_mps_noise": "--use_mps_noise",
}


def unsupported_message(spelling: str) -> str:
    return f"{spelling} ({UNSUPPORTED[spelling]}) is an InvokeAI switch that invoke-shell does not support"
