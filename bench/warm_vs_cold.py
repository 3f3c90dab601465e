"""Warm vs cold: a second command on the shell's resident model (`Shell.execute`, PNG with metadata written)
beside a fresh `python` process that imports diffusers, loads the same model and generates and saves the
same image: what a script user pays every time. Alternating, median of N; the two PNGs must have the same
pixels. The built-in demo model (64 px, 20 steps) and the full-size SD 1.5 architecture with random
weights (256 px, 1 step; fewer runs).

    .venv/bin/python bench/warm_vs_cold.py [--runs 7] [--full-runs 3] [--no-full]
"""

from __future__ import annotations

import _common as c  # noqa: I001  (sets HF_HUB_OFFLINE first)

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPT = "a red star on a blue background"
SEED = 7

SCRIPT = """
import os, sys
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch
from diffusers import LMSDiscreteScheduler, StableDiffusionPipeline
folder, prompt, steps, size, seed, out, threads = sys.argv[1:]
torch.set_num_threads(int(threads))
pipe = StableDiffusionPipeline.from_pretrained(folder, dtype=torch.float32, local_files_only=True,
                                               safety_checker=None, requires_safety_checker=False)
pipe.scheduler = LMSDiscreteScheduler.from_config(pipe.scheduler.config)
pipe.set_progress_bar_config(disable=True)
image = pipe(prompt, negative_prompt="", num_inference_steps=int(steps), guidance_scale=7.5, height=int(size),
             width=int(size), generator=torch.Generator("cpu").manual_seed(int(seed))).images[0]
image.save(out)
"""


def measure(entry, size: int, steps: int, runs: int, threads: int, tmp: Path) -> dict:
    from PIL import Image

    from invoke_shell.shell import Shell

    said: list[str] = []
    shell = Shell(c.manager(entry), outdir=str(tmp / entry.name), say=said.append, model=entry.name)
    line = f'"{PROMPT}" -s {steps} -S {SEED} -W {size} -H {size} -A k_lms'
    start = time.perf_counter()
    shell.model()
    load = time.perf_counter() - start
    start = time.perf_counter()
    assert shell.execute(line), said[-3:]
    first = time.perf_counter() - start
    folder = str(shell.manager.active.folder)
    cold_png = tmp / f"{entry.name}-cold.png"

    def warm():
        assert shell.execute(line), said[-3:]

    def cold():
        done = subprocess.run([sys.executable, "-c", SCRIPT, folder, PROMPT, str(steps), str(size), str(SEED),
                               str(cold_png), str(threads)], capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"the fresh python process failed:\n{done.stderr}")

    times = c.alternate({"warm": warm, "cold": cold}, runs, warmup=1)
    diff = c.pixel_diff(Image.open(shell.previous[0].path).convert("RGB"), Image.open(cold_png).convert("RGB"))
    return dict(times=times, load=load, first=first, diff=diff,
                ratio=c.paired_ratio(times["warm"], times["cold"]))


def main() -> None:
    args = c.workload_parser(__doc__, runs=7, full_runs=3).parse_args()
    c.setup(args.threads)
    print(c.machine())
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for entry, size, steps, runs, label in c.workloads(args):
            r = measure(entry, size, steps, runs, args.threads, Path(tmp))
            w, k = statistics.median(r["times"]["warm"]), statistics.median(r["times"]["cold"])
            same = "same pixels" if r["diff"][0] == 0 else f"pixels differ: max {r['diff'][0]}"
            print(f"{label}: warm second command median {w:.3f} s, fresh python process median {k:.3f} s, "
                  f"median ratio {r['ratio']:.3f}; {same}")
            print(f"  warm runs: {c.runs_text(r['times']['warm'])}")
            print(f"  cold runs: {c.runs_text(r['times']['cold'])}")
            print(f"  (in the shell: model load {r['load']:.2f} s, first command {r['first']:.2f} s: it pages the "
                  f"weights in and, the first time these files are seen, hashes them for the PNG metadata)")
            ratios.append(f"{label} {r['ratio']:.3f}")
    print("summary: warm/cold median ratio " + ", ".join(ratios))


if __name__ == "__main__":
    main()
