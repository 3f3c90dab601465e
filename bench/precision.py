"""Precision on the CPU: bfloat16 beside float32. The built-in demo model through the shell's engine (64 px,
20 steps: time and the pixel difference of the two images), and one forward pass of the full-size SD 1.5
UNet (random weights, at 128 px by default: batch 2 x 4 x 16 x 16; emulated bfloat16 takes about a minute
for it, and four times that at 256 px), alternating, median of N. Also says whether this CPU
computes bfloat16 natively (AVX512-BF16 or AMX; elsewhere torch emulates it), what `--precision auto`
picks here, what auto's own measurement (invoke_shell/models/precision.py) decides for the demo model when
it is made to measure, and what its rule (bfloat16 only when at least 5% faster) makes of these figures.

    .venv/bin/python bench/precision.py [--runs 5] [--full-runs 3] [--full-px 128] [--no-full]
"""

from __future__ import annotations

import _common as c  # noqa: I001  (sets HF_HUB_OFFLINE first)

import statistics

PROMPT = "a red star on a blue background"


def demo(runs: int) -> dict:
    models = {p: c.manager(c.demo_entry(), precision=p).activate("demo") for p in ("float32", "bfloat16")}
    req = c.request(PROMPT, 20, 64, 7)
    images = {}

    def run(precision):
        def go():
            images[precision] = c.engine_generate(models[precision], req)[0]
        return go

    times = c.alternate({p: run(p) for p in models}, runs)
    return dict(times=times, ratio=c.paired_ratio(times["bfloat16"], times["float32"]),
                diff=c.pixel_diff(images["bfloat16"], images["float32"]))


def unet(runs: int, px: int) -> dict:
    import torch
    from diffusers import UNet2DConditionModel

    folder = c.sd15_folder() / "unet"
    models = {"float32": UNet2DConditionModel.from_pretrained(folder, dtype=torch.float32),
              "bfloat16": UNet2DConditionModel.from_pretrained(folder, dtype=torch.bfloat16)}
    g = torch.Generator().manual_seed(0)
    sample = torch.randn(2, 4, px // 8, px // 8, generator=g)  # cond + uncond
    context = torch.randn(2, 77, 768, generator=g)
    outputs = {}

    def run(precision, x=sample):
        dtype = getattr(torch, precision)

        def go():
            with torch.inference_mode():
                outputs[precision] = models[precision](x.to(dtype), 500, context.to(dtype)).sample.float()
        return go

    for precision in models:  # warm-up on a small latent: a full-size emulated pass takes minutes
        run(precision, sample[:, :, :8, :8])()
    times = c.alternate({p: run(p) for p in models}, runs, warmup=0)
    a, b = outputs["bfloat16"], outputs["float32"]
    return dict(times=times, ratio=c.paired_ratio(times["bfloat16"], times["float32"]),
                rel=float((a - b).norm() / b.norm()))


def main() -> None:
    parser = c.workload_parser(__doc__, runs=5, full_runs=3, full_what="UNet passes")
    parser.add_argument("--full-px", type=int, default=128, help="image size of the UNet pass (default 128)")
    args = parser.parse_args()
    c.setup(args.threads)
    from invoke_shell.models import precision

    print(c.machine())
    native = precision.cpu_has_native_bf16()
    rule = precision.decide("auto", "cpu")
    auto = rule.describe() if rule is not None else "the faster of float32 and bfloat16, measured per model"
    print(f"native bfloat16 on this CPU (AVX512-BF16 or AMX): {'yes' if native else 'no (emulated)'}; "
          f"--precision auto picks {auto} on the CPU")
    demo_model = c.manager(c.demo_entry(), precision="float32").activate("demo")
    measured = precision.measure(demo_model.txt2img.unet, demo_model.txt2img.unet.config.sample_size)
    print(f"auto's measurement of the demo UNet (as it runs on a CPU with bfloat16 instructions): "
          f"{measured.describe()}")
    parts = []
    r = demo(args.runs)
    f32, b16 = statistics.median(r["times"]["float32"]), statistics.median(r["times"]["bfloat16"])
    print(f"demo 64 px 20 steps: float32 median {f32 * 1000:.0f} ms, bfloat16 median {b16 * 1000:.0f} ms, "
          f"median ratio bf16/fp32 {r['ratio']:.2f}; pixel difference max {r['diff'][0]}, mean {r['diff'][1]:.2f}")
    print(f"  float32 runs:  {c.runs_text(r['times']['float32'], 1000, 0)}")
    print(f"  bfloat16 runs: {c.runs_text(r['times']['bfloat16'], 1000, 0)}")
    parts.append(f"demo {r['ratio']:.2f}")
    picks = [f"demo {precision.from_times(f32, b16).dtype}"]
    pixels = f"pixel difference (demo) max {r['diff'][0]} mean {r['diff'][1]:.2f}"
    if not args.no_full:
        u = unet(args.full_runs, args.full_px)
        f32, b16 = statistics.median(u["times"]["float32"]), statistics.median(u["times"]["bfloat16"])
        print(f"SD 1.5 UNet, one pass at {args.full_px} px: float32 median {f32:.2f} s, bfloat16 median {b16:.2f} s, "
              f"median ratio bf16/fp32 {u['ratio']:.2f}; output relative difference {u['rel']:.4f}")
        print(f"  float32 runs:  {c.runs_text(u['times']['float32'])}")
        print(f"  bfloat16 runs: {c.runs_text(u['times']['bfloat16'])}")
        parts.append(f"SD 1.5 UNet {u['ratio']:.2f}")
        picks.append(f"SD 1.5 UNet {precision.from_times(f32, b16).dtype}")
    print(f"summary: {precision.cpu_name()}: bfloat16/float32 time {', '.join(parts)}; {pixels}; native bf16: "
          f"{'yes' if native else 'no'}; --precision auto on this CPU: {auto}; the measured rule on these "
          f"figures: {', '.join(picks)}")


if __name__ == "__main__":
    main()
