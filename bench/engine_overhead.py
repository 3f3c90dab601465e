"""Engine overhead: the same request through the shell's engine (prepare + run_batch, as `Shell.generate`
drives it) and through a hand-written diffusers pipeline call (same model, scheduler, seed, size, steps),
alternating, median of N after a warm-up; the images must be identical.

Workloads: the built-in demo model at 64 px (20 steps) and 128 px (10 steps), and the full-size Stable
Diffusion 1.5 architecture with random weights (860M-parameter UNet) at 256 px, 1 step. Then the costs
the engine adds outside the pipeline call, measured alone: prepare(), the prompt conditioning (compel)
beside diffusers' encode_prompt, and a scheduler built from the model's config for each sampler.

    .venv/bin/python bench/engine_overhead.py [--runs 15] [--full-runs 10] [--full-steps 1] [--no-full]
"""

from __future__ import annotations

import _common as c  # noqa: I001  (sets HF_HUB_OFFLINE first)

import gc
import statistics
import time

PROMPT = "a red star on a blue background"
GOAL = 1.02


def compare(model, raw, size: int, steps: int, runs: int, seed: int = 7) -> dict:
    """Alternate engine and raw calls; returns times, paired ratio and the pixel difference."""
    req = c.request(PROMPT, steps, size, seed)
    images = {}

    def engine():
        images["engine"] = c.engine_generate(model, req)[0]

    def diffusers():
        images["diffusers"] = c.raw_txt2img(raw, PROMPT, steps, size, seed)[0]

    times = c.alternate({"engine": engine, "diffusers": diffusers}, runs)
    return dict(times=times, ratio=c.paired_ratio(times["engine"], times["diffusers"]),
                diff=c.pixel_diff(images["engine"], images["diffusers"]))


def median_ms(fn, n: int = 11) -> float:
    fn()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def extras(model, raw) -> None:
    """What the engine does outside the pipeline call, each timed alone (median of 11)."""
    import torch

    from invoke_shell.engine import generate as engine
    from invoke_shell.engine.prompts import conditioning
    from invoke_shell.engine.samplers import make_scheduler
    from invoke_shell.samplers import NAMES

    req = c.request(PROMPT, 20, 64, 7)
    print(f"\nengine work outside the pipeline call ({model.name}, median of 11):")
    print(f"  prepare() (size, schedule plan)            {median_ms(lambda: engine.prepare(req, model)):8.2f} ms")
    print(f"  conditioning() via compel, prompt + ''     "
          f"{median_ms(lambda: conditioning(model, req.positive_prompt, req.negative_prompt)):8.2f} ms")
    with torch.no_grad():
        encode = median_ms(lambda: raw.encode_prompt(PROMPT, "cpu", 1, True, ""))
    print(f"  diffusers encode_prompt (inside its call)  {encode:8.2f} ms")
    config = model.sampler_config
    print("  a scheduler from the model's config (make_scheduler; prepare and run_batch each build one):")
    for sampler in NAMES:
        built = median_ms(lambda: make_scheduler(sampler, config), n=5)
        scheduler = make_scheduler(sampler, config)
        timesteps = median_ms(lambda: scheduler.set_timesteps(20), n=5)
        print(f"    {sampler:10} from_config {built:8.2f} ms   set_timesteps(20) {timesteps:6.2f} ms")


def report(label: str, result: dict, unit: float, unit_name: str) -> None:
    t = result["times"]
    e, d = statistics.median(t["engine"]), statistics.median(t["diffusers"])
    same = "identical" if result["diff"][0] == 0 else f"differ: max {result['diff'][0]}, mean {result['diff'][1]:.3f}"
    print(f"{label}: engine {e * unit:.1f} {unit_name}, diffusers {d * unit:.1f} {unit_name}, "
          f"median ratio {result['ratio']:.3f}; images {same}")
    print(f"  engine    runs: {c.runs_text(t['engine'], unit, 1)}")
    print(f"  diffusers runs: {c.runs_text(t['diffusers'], unit, 1)}")


def main() -> None:
    parser = c.workload_parser(__doc__, runs=15, full_runs=10)
    parser.add_argument("--full-steps", type=int, default=1, help="steps at full size (default 1)")
    args = parser.parse_args()
    c.setup(args.threads)
    print(c.machine())

    ratios, identical = {}, True
    model = c.manager(c.demo_entry()).activate("demo")
    raw = c.raw_pipeline(model.folder)
    for size, steps in ((64, 20), (128, 10)):
        label = f"demo {size} px {steps} steps"
        result = compare(model, raw, size, steps, args.runs)
        report(label, result, 1000, "ms")
        ratios[label] = result["ratio"]
        identical &= result["diff"][0] == 0
    extras(model, raw)
    del model, raw
    gc.collect()

    if not args.no_full:
        folder = c.sd15_folder()
        model = c.manager(c.sd15_entry()).activate("sd15")
        raw = c.raw_pipeline(folder)
        label = f"SD 1.5 size 256 px {args.full_steps} step{'s' if args.full_steps > 1 else ''}"
        result = compare(model, raw, 256, args.full_steps, args.full_runs)
        print()
        report(label, result, 1, "s")
        ratios[label] = result["ratio"]
        identical &= result["diff"][0] == 0

    met = all(r <= GOAL for r in ratios.values())
    print("summary: engine/diffusers median ratio " + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items())
          + f" (goal <= {GOAL}: {'met' if met else 'NOT met'}); images {'identical' if identical else 'DIFFER'}")


if __name__ == "__main__":
    main()
