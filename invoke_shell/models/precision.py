"""Which floating-point type a model runs in, and why.

`--precision auto` gives float16 on CUDA and float32 on MPS. On the CPU it gives float32 where the CPU has no
bfloat16 instructions (torch emulates them there: 5x to 13x slower, bench/precision.py), and elsewhere the
faster of float32 and bfloat16 for the model at hand, measured once (UNet calls of each kind) and remembered
per model files, CPU model, torch version and thread count in the cache directory. bfloat16 is picked only
when it measured at least 5% faster, so auto is never more than 5% slower than the other choice, and the
model keeps float32's fidelity when the two are close.

`INVOKE_SHELL_CPU_BF16=native|emulated` overrides what the CPU is taken to have (tests force each branch
with it on either CPU family).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_atomic
from .files import stat_key

log = logging.getLogger(__name__)

BF16_MARGIN = 0.95       # bfloat16 must take at most this fraction of float32's time to be picked
MEASURE_LATENT = 32      # the measured UNet call works on at most 32 x 32 latents (256 px for SD 1.5)
RECORD_VERSION = 1


@dataclass(frozen=True)
class Pick:
    """A model's precision: the torch dtype's name and a few words on why."""

    dtype: str   # float32, float16, bfloat16
    why: str     # e.g. "asked", "bf16 emulated", "measured: bf16 1.90x faster"

    def describe(self) -> str:
        return f"{self.dtype} ({self.why})"


def cpu_has_native_bf16() -> bool:
    """Whether the CPU computes bfloat16 in hardware (AVX512-BF16 or AMX); elsewhere torch emulates it."""
    forced = os.environ.get("INVOKE_SHELL_CPU_BF16", "").strip().lower()
    if forced in ("native", "emulated"):
        return forced == "native"
    import torch

    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # torch without these probes: read the flags
        flags = cpu_info().get("flags", "").split()
        return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_info() -> dict[str, str]:
    """The first processor's entries of /proc/cpuinfo (empty where there is none)."""
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return info


def cpu_name() -> str:
    return cpu_info().get("model name") or platform.processor() or platform.machine()


def decide(requested: str, device: str) -> Pick | None:
    """The pick that needs no measurement; None when the model must be measured (auto on a CPU with bfloat16
    instructions)."""
    if requested != "auto":
        return Pick(requested, "asked")
    if device == "cuda":
        return Pick("float16", "cuda")
    if device != "cpu":
        return Pick("float32", device)
    if not cpu_has_native_bf16():
        return Pick("float32", "bf16 emulated on this CPU")
    return None


def from_times(float32_s: float, bfloat16_s: float) -> Pick:
    """The measured pick: bfloat16 only when it took at most BF16_MARGIN of float32's time."""
    ratio = bfloat16_s / float32_s
    if ratio <= BF16_MARGIN:
        return Pick("bfloat16", f"measured: bf16 {1 / ratio:.2f}x faster")
    if ratio < 1:
        return Pick("float32", f"measured: bf16 only {1 / ratio:.2f}x faster")
    return Pick("float32", f"measured: bf16 {ratio:.2f}x slower")


def unet_inputs(unet, dtype, side: int):
    """One classifier-free-guided UNet call's inputs (batch 2) for `unet`'s config, at side x side latents."""
    import torch

    config = unet.config
    g = torch.Generator().manual_seed(0)
    sample = torch.randn(2, config.in_channels, side, side, generator=g)
    context = torch.randn(2, 77, config.cross_attention_dim, generator=g)
    kwargs = {}
    if getattr(config, "addition_embed_type", None) == "text_time":  # SDXL: pooled text and size conditioning
        pooled = config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim
        kwargs["added_cond_kwargs"] = {"text_embeds": torch.randn(2, pooled, generator=g).to(dtype),
                                       "time_ids": torch.zeros(2, 6, dtype=dtype)}
    return sample.to(dtype), context.to(dtype), kwargs


def time_unet(unet, dtype, side: int, runs: int = 2) -> float:
    """The fastest of `runs` UNet calls of `unet` (already in `dtype`), after one small warm-up call."""
    import torch

    best = float("inf")
    with torch.inference_mode():
        small, small_context, small_kwargs = unet_inputs(unet, dtype, min(side, 8))
        unet(small, 500, small_context, **small_kwargs)  # kernels are made on the first call
        sample, context, kwargs = unet_inputs(unet, dtype, side)
        for _ in range(runs):
            start = time.perf_counter()
            unet(sample, 500, context, **kwargs)
            best = min(best, time.perf_counter() - start)
    return best


def measure(unet, native_latent: int) -> Pick:
    """Time `unet` (loaded in float32) beside a bfloat16 copy of it, and pick."""
    import torch

    side = max(4, min(native_latent, MEASURE_LATENT))
    copy16 = copy.deepcopy(unet).to(torch.bfloat16)
    try:
        float32_s = time_unet(unet, torch.float32, side)
        bfloat16_s = time_unet(copy16, torch.bfloat16, side)
    finally:
        del copy16
    pick = from_times(float32_s, bfloat16_s)
    log.info("precision: UNet call at %d x %d latents: float32 %.1f ms, bfloat16 %.1f ms -> %s", side, side,
             float32_s * 1000, bfloat16_s * 1000, pick.describe())
    return pick


def record_path(files: list[Path], cache: Path) -> Path:
    """Where the measured pick for exactly these model files, on this CPU, torch and thread count, is kept."""
    import torch

    key = stat_key(files, cpu_name(), torch.__version__, str(torch.get_num_threads()), str(RECORD_VERSION))
    return cache / "precision" / f"{key}.json"


def remembered(path: Path) -> Pick | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        pick = Pick(str(data["dtype"]), str(data["why"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pick if pick.dtype in ("float32", "bfloat16") else None


def remember(path: Path, pick: Pick) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps({"dtype": pick.dtype, "why": pick.why, "cpu": cpu_name()}) + "\n")
    except OSError:  # a read-only cache only costs the next session the measurement again
        log.info("could not remember the precision pick in %s", path.parent, exc_info=True)
