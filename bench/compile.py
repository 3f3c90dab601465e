"""torch.compile of the UNet on the CPU: worth it? The built-in demo model through the shell's engine at
64 px, 20 steps: eager beside `unet.compile()` (the first call, which compiles, timed apart), alternating,
median of N, and the pixel difference of the two images; then how many images it takes before the
compile time is paid back.

    .venv/bin/python bench/compile.py [--runs 7] [--mode default|reduce-overhead|max-autotune]
"""

from __future__ import annotations

import _common as c  # noqa: I001  (sets HF_HUB_OFFLINE first)

import math
import statistics
import time

PROMPT = "a red star on a blue background"


def main() -> None:
    parser = c.parser(__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--mode", default="default")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    c.setup(args.threads)
    print(c.machine())
    eager = c.manager(c.demo_entry()).activate("demo")
    compiled = c.manager(c.demo_entry()).activate("demo")
    req = c.request(PROMPT, args.steps, args.size, 7)
    c.engine_generate(eager, req)  # warm-up
    compiled.txt2img.unet.compile(mode=args.mode)
    start = time.perf_counter()
    c.engine_generate(compiled, req)
    first = time.perf_counter() - start
    images = {}

    def run(name, model):
        def go():
            images[name] = c.engine_generate(model, req)[0]
        return go

    times = c.alternate({"eager": run("eager", eager), "compiled": run("compiled", compiled)}, args.runs)
    e, k = statistics.median(times["eager"]), statistics.median(times["compiled"])
    ratio = c.paired_ratio(times["compiled"], times["eager"])
    diff = c.pixel_diff(images["compiled"], images["eager"])
    saved = e - k
    payback = f"{math.ceil((first - k) / saved)} images" if saved > 0 else "never"
    label = f"demo {args.size} px {args.steps} steps"
    print(f"{label}: eager median {e * 1000:.0f} ms, compiled median {k * 1000:.0f} ms, median ratio "
          f"{ratio:.3f}; first compiled call (compiling) {first:.1f} s; pixel difference max {diff[0]}, "
          f"mean {diff[1]:.3f}")
    print(f"  eager runs:    {c.runs_text(times['eager'], 1000, 0)}")
    print(f"  compiled runs: {c.runs_text(times['compiled'], 1000, 0)}")
    print(f"summary: compiled/eager {ratio:.3f} ({label}, mode {args.mode}); compile time {first:.1f} s, "
          f"paid back after {payback}")


if __name__ == "__main__":
    main()
