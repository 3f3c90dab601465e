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
    """One switch. `kind` is int, float, str, path, choice or flag; `launch` marks the switches that
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
    Switch("fit", ("-T", "-fit"), ("--fit",), "flag", "fit the init image inside W x H, keeping its aspect ratio",
           launch=True),
    Switch("compensate_steps", (), ("--compensate_steps",), "flag",
           "img2img: -s counts the steps run from the init image; the schedule grows to give them"),
    Switch("iterations", ("-n",), ("--iterations",), "int",
           "images to make; with -S S, image k (from 0) has seed S+k; without -S, random seeds", "N",
           range=Range(1, 64)),
    Switch("grid", ("-g",), ("--grid",), "flag", "also save the -n images as one grid PNG"),
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
    Switch("outdir", ("-o",), ("--outdir",), "path", "output folder for this command", "DIR", completes="dir"),
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
    "-i": "--individual", "--individual": "--individual",
    "--fnformat": "--fnformat",
    "--threshold": "--threshold", "--perlin": "--perlin", "--karras_max": "--karras_max",
    "--h_symmetry_time_pct": "--h_symmetry_time_pct", "--v_symmetry_time_pct": "--v_symmetry_time_pct",
    "--hires_fix": "--hires_fix",
    "--seamless": "--seamless", "--seamless_axes": "--seamless_axes",
    "-tm": "--text_mask", "--text_mask": "--text_mask", "--init_color": "--init_color",
    "-r": "--inpaint_replace", "--inpaint_replace": "--inpaint_replace",
    "-G": "--facetool_strength", "--facetool_strength": "--facetool_strength",
    "--gfpgan_strength": "--gfpgan_strength", "-ft": "--facetool", "--facetool": "--facetool",
    "-cf": "--codeformer_fidelity", "--codeformer_fidelity": "--codeformer_fidelity",
    "-U": "--upscale", "--upscale": "--upscale", "-save_orig": "--save_original", "--save_original": "--save_original",
    "-embiggen": "--embiggen", "--embiggen": "--embiggen", "--embiggen_tiles": "--embiggen_tiles",
    "--embiggen_strength": "--embiggen_strength", "-c": "--outcrop", "--outcrop": "--outcrop",
    "--force_outpaint": "--force_outpaint", "--seam_size": "--seam_size", "--seam_blur": "--seam_blur",
    "--seam_strength": "--seam_strength", "--seam_steps": "--seam_steps", "--tile_size": "--tile_size",
    "-D": "--out_direction", "--out_direction": "--out_direction", "--use_mps_noise": "--use_mps_noise",
}


def unsupported_message(spelling: str) -> str:
    return f"{spelling} ({UNSUPPORTED[spelling]}) is an InvokeAI switch that invoke-shell does not support"
