"""What the benchmark scripts share: thread settings, the models they run (the built-in ones, and a full-size
Stable Diffusion 1.5 architecture with random weights built from the published configs shipped in
invoke_shell/data/configs/sd1), a hand-written diffusers pipeline to compare against, alternating timing,
and counters of UNet / VAE / text-encoder calls.

Benchmark code only: nothing here is imported by the shell."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports diffusers

import argparse
import shutil
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

SD15_VERSION = "bench-sd15-random-v1"  # bump when build_sd15 changes
SD15_PARAMS = 859_520_964              # the published SD 1.5 UNet's parameter count


# ---- arguments and threads ----
def parser(doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    return p


def workload_parser(doc: str, runs: int, full_runs: int, full_what: str = "runs") -> argparse.ArgumentParser:
    """`parser` plus the two workloads' options: --runs (built-in model), --full-runs and --no-full."""
    p = parser(doc)
    p.add_argument("--runs", type=int, default=runs, help=f"alternating runs, built-in model (default {runs})")
    p.add_argument("--full-runs", type=int, default=full_runs,
                   help=f"alternating {full_what} at full size (default {full_runs})")
    p.add_argument("--no-full", action="store_true", help="skip the full-size model")
    return p


def workloads(args) -> list[tuple]:
    """(entry, size, steps, runs, label): the built-in model at 64 px, 20 steps; unless --no-full, the SD 1.5
    size model (built into the cache on first use) at 256 px, 1 step."""
    chosen = [(demo_entry(), 64, 20, args.runs, "demo 64 px 20 steps")]
    if not args.no_full:
        sd15_folder()
        chosen.append((sd15_entry(), 256, 1, args.full_runs, "SD 1.5 size 256 px 1 step"))
    return chosen


def setup(threads: int | None) -> None:
    """Set torch's threads (None: torch's default) and import diffusers as the shell does (offline, quiet)."""
    import torch

    from invoke_shell.models.stack import import_stack

    if threads is not None:
        torch.set_num_threads(threads)
    import_stack()


def machine() -> str:
    import platform

    import torch

    from invoke_shell.models.precision import cpu_name

    return (f"{cpu_name()}, {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()}), "
            f"{torch.get_num_threads()} threads, {platform.python_version()}")


# ---- models ----
def registry(*entries):
    from invoke_shell.models.registry import Registry

    return Registry(tuple(entries), None)


def entry(name: str, path: str):
    from invoke_shell.models.registry import ModelEntry

    return ModelEntry(name, "", "diffusers", path=path)


def manager(*entries, precision: str = "float32", max_loaded: int = 2):
    """A ModelManager on the CPU over the given entries (the first is the default)."""
    from invoke_shell.models.manager import ModelManager

    return ModelManager(registry(*entries), device="cpu", precision=precision, max_loaded=max_loaded)


def demo_entry():
    return entry("demo", "builtin:demo")


def sd15_entry():
    return entry("sd15", str(sd15_folder()))


def sd15_folder() -> Path:
    """The full-size SD 1.5 architecture with random weights as a diffusers folder (about 4 GB), built once
    into the cache directory ($INVOKE_SHELL_CACHE or ~/.cache/invoke-shell)."""
    from invoke_shell.models.builtin import cache_dir

    folder = cache_dir() / SD15_VERSION
    if (folder / "model_index.json").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        start = time.perf_counter()
        print(f"building the full-size SD 1.5 model (random weights) into {folder} once...", flush=True)
        build_sd15(tmp)
        os.rename(tmp, folder)
        print(f"built in {time.perf_counter() - start:.0f} s", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def build_sd15(folder: Path, seed: int = 0) -> None:
    """Write SD 1.5's architecture (UNet 860M, VAE 84M, CLIP ViT-L text encoder 123M) with deterministic
    random weights, its PNDM scheduler config and the real CLIP tokenizer, as a diffusers folder."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from invoke_shell.models.singlefile import CONFIGS, TOKENIZER

    sd1 = CONFIGS / "sd1"
    tokenizer = CLIPTokenizer.from_pretrained(TOKENIZER)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(sd1 / "unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(sd1 / "vae"))
        text_encoder = CLIPTextModel(CLIPTextConfig.from_pretrained(sd1 / "text_encoder"))
    params = sum(p.numel() for p in unet.parameters())
    assert params == SD15_PARAMS, f"the UNet has {params} parameters, SD 1.5's has {SD15_PARAMS}"
    scheduler = PNDMScheduler.from_config(PNDMScheduler.load_config(sd1 / "scheduler"))
    pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(folder)


def raw_pipeline(folder, dtype=None, sampler: str = "k_lms"):
    """What a script user writes: from_pretrained, the sampler's scheduler from the model's config."""
    import torch
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(folder, dtype=dtype or torch.float32, local_files_only=True,
                                                   safety_checker=None, requires_safety_checker=False)
    set_sampler(pipe, sampler)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def set_sampler(pipe, sampler: str) -> None:
    """`pipe.scheduler = <Class>.from_config(pipe.scheduler.config)`, the class named by the sampler table."""
    import diffusers

    from invoke_shell.samplers import BY_NAME

    entry = BY_NAME[sampler]
    pipe.scheduler = getattr(diffusers, entry.scheduler).from_config(pipe.scheduler.config, **entry.config_overrides)


def raw_txt2img(pipe, prompt: str, steps: int, size: int, seed: int, cfg: float = 7.5, images: int = 1):
    """One plain diffusers call, as in diffusers' documentation."""
    import torch

    generator = [torch.Generator("cpu").manual_seed(seed + k) for k in range(images)] if images > 1 else \
        torch.Generator("cpu").manual_seed(seed)
    return pipe(prompt, negative_prompt="", num_inference_steps=steps, guidance_scale=cfg, height=size, width=size,
                generator=generator, num_images_per_prompt=images).images


def request(prompt: str, steps: int, size: int, seed: int, sampler: str = "k_lms", cfg: float = 7.5,
            init_img: str | None = None, strength: float | None = None, iterations: int | None = None):
    from invoke_shell.request import GenerationRequest

    return GenerationRequest(prompt=prompt, steps=steps, cfg_scale=cfg, sampler=sampler, seed=seed, width=size,
                             height=size, init_img=init_img, strength=strength, iterations=iterations)


def engine_generate(model, req, on_step=None):
    """The shell's engine for one command of one image, as Shell.generate drives it."""
    from invoke_shell.engine import generate as engine

    job = engine.prepare(req, model)
    return engine.run_batch([job], model, on_step=on_step or (lambda step, latents: None))


# ---- timing ----
def alternate(fns: dict[str, Callable[[], object]], runs: int, warmup: int = 1) -> dict[str, list[float]]:
    """Run each function `warmup` times, then `runs` rounds of all of them in turn (the order rotating
    each round, so neither side always goes first); returns the wall times in seconds."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(runs):
        order = names[i % len(names):] + names[:i % len(names)]
        for name in order:
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return times


def paired_ratio(a: list[float], b: list[float]) -> float:
    """Median of the per-round ratios a/b (runs taken side by side)."""
    return statistics.median(x / y for x, y in zip(a, b))


def runs_text(times: list[float], unit: float = 1.0, digits: int = 2) -> str:
    return ", ".join(f"{t * unit:.{digits}f}" for t in times)


def pixel_diff(a, b) -> tuple[int, float]:
    """(max, mean) absolute difference of two PIL images in 0..255 pixel values."""
    import numpy as np

    x = np.asarray(a, dtype=np.int16)
    y = np.asarray(b, dtype=np.int16)
    d = np.abs(x - y)
    return int(d.max()), float(d.mean())


# ---- counting model calls ----
class Calls:
    """Counts of UNet, VAE-encode, VAE-decode and text-encoder calls, with the batch of each UNet call."""

    def __init__(self):
        self.unet: list[int] = []
        self.encode: list[int] = []
        self.decode: list[int] = []
        self.text: list[int] = []


@contextmanager
def count_calls(pipe):
    """Wrap the pipe's UNet forward, VAE encode/decode and text encoder forward with counters (instance
    attributes, removed again on exit; the pipelines of a LoadedModel share these modules)."""
    calls = Calls()
    wrapped = []

    def wrap(obj, name, record):
        original = getattr(obj, name)

        def counting(*args, **kwargs):
            x = args[0] if args else next(iter(kwargs.values()))
            record.append(int(x.shape[0]))
            return original(*args, **kwargs)

        setattr(obj, name, counting)
        wrapped.append((obj, name))

    wrap(pipe.unet, "forward", calls.unet)
    wrap(pipe.vae, "encode", calls.encode)
    wrap(pipe.vae, "decode", calls.decode)
    wrap(pipe.text_encoder, "forward", calls.text)
    try:
        yield calls
    finally:
        for obj, name in wrapped:
            delattr(obj, name)
