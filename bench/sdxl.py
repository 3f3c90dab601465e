"""SDXL at its real size: the shell's engine (prepare + run_batch, as `Shell.generate` drives it) beside diffusers'
`StableDiffusionXLPipeline` called as its documentation writes it, on the same components: the SDXL base
architecture with random weights built from the configs shipped in invoke_shell/data/configs/sdxl (UNet 2.6B
parameters, both text encoders, VAE; float32, about 14 GB of memory), alternating, 1 step at --size px. The
images must be identical. Then the peak resident memory of one call of each (VmHWM, reset between them).

    .venv/bin/python bench/sdxl.py [--size 512] [--runs 9]
"""

from __future__ import annotations

import _common as c  # noqa: I001  (sets HF_HUB_OFFLINE first)

import time
from pathlib import Path

PROMPT = "a red star on a blue background"
GOAL = 1.02


def build():
    """The SDXL base pipeline from the shipped configs, random weights (seeded), in float32."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from invoke_shell.models.families import CONFIGS
    from invoke_shell.models.singlefile import load_tokenizer

    folder = CONFIGS / "sdxl"
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))
    vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
    text_encoder = CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder"))
    text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(folder / "text_encoder_2"))
    scheduler = EulerDiscreteScheduler.from_config(EulerDiscreteScheduler.load_config(folder / "scheduler"))
    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                                     tokenizer=load_tokenizer("sd1"), tokenizer_2=load_tokenizer("sdxl"), unet=unet,
                                     scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(torch.float32)


def loaded(pipe):
    """The pipeline as the model manager hands it to the engine."""
    from invoke_shell.models import families
    from invoke_shell.models.manager import LoadedModel, sibling
    from invoke_shell.models.registry import ModelEntry

    img2img = sibling(__import__("diffusers").StableDiffusionXLImg2ImgPipeline, pipe)
    img2img.set_progress_bar_config(disable=True)
    return LoadedModel(ModelEntry("sdxl-random", "", "diffusers", path="."), Path("."), pipe, img2img,
                       family=families.BY_KEY["sdxl"], scheduler_config=dict(pipe.scheduler.config))


def peak_mb(fn) -> float:
    """The peak resident memory (MB) while `fn` runs, from a reset high-water mark."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    fn()
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    p = c.parser(__doc__)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--runs", type=int, default=9)
    args = p.parse_args()
    c.setup(args.threads)
    print(f"# bench/sdxl.py  {c.machine()}  threads={args.threads}")
    start = time.perf_counter()
    pipe = build()
    model = loaded(pipe)
    print(f"built SDXL base (random weights, UNet {sum(x.numel() for x in pipe.unet.parameters()):,} parameters) "
          f"in {time.perf_counter() - start:.0f} s")
    c.set_sampler(pipe, "k_lms")
    req = c.request(PROMPT, 1, args.size, 7)
    images = {}

    def engine():
        images["engine"] = c.engine_generate(model, req)[0]

    def diffusers():
        c.set_sampler(pipe, "k_lms")  # what the engine leaves in the shared pipeline is replaced, as a user would
        images["diffusers"] = c.raw_txt2img(pipe, PROMPT, 1, args.size, 7)[0]

    times = c.alternate({"engine": engine, "diffusers": diffusers}, args.runs)
    ratio = c.paired_ratio(times["engine"], times["diffusers"])
    diff = c.pixel_diff(images["engine"], images["diffusers"])
    peaks = {"engine": peak_mb(engine), "diffusers": peak_mb(diffusers)}
    print(f"\n## SDXL base size, {args.size} px, 1 step (k_lms), float32")
    print(f"engine runs:    {c.runs_text(times['engine'])} s")
    print(f"diffusers runs: {c.runs_text(times['diffusers'])} s")
    print(f"peak memory of one call: engine {peaks['engine']:.0f} MB, diffusers {peaks['diffusers']:.0f} MB "
          f"(ratio {peaks['engine'] / peaks['diffusers']:.3f})")
    print(f"summary: engine/diffusers {ratio:.3f} (goal {GOAL}); pixels max diff {diff[0]}, mean {diff[1]:.3f}")


if __name__ == "__main__":
    main()
