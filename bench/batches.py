"""Batches: one `-n 4` command (its images go through the UNet together) beside 4 single commands with the
same four seeds, both through `Shell.execute`, alternating, median of N; image k of the batch beside the
single run of its seed (batched matmuls round differently, so a small difference is expected). The
built-in demo model at 64 px, 20 steps, and the full-size SD 1.5 architecture at 256 px, 1 step.

    .venv/bin/python bench/batches.py [--runs 5] [--full-runs 2] [--no-full]
"""

from __future__ import annotations

import _common as c  # noqa: I001  (sets HF_HUB_OFFLINE first)

import statistics
import tempfile
from pathlib import Path

PROMPT = "a red star on a blue background"
IMAGES = 4


def measure(entry, size: int, steps: int, runs: int, tmp: Path) -> dict:
    from PIL import Image

    from invoke_shell.shell import Shell

    said: list[str] = []
    shell = Shell(c.manager(entry), outdir=str(tmp / entry.name), say=said.append, model=entry.name)
    base = f'"{PROMPT}" -s {steps} -W {size} -H {size} -A k_lms'
    last: dict = {}

    def batched():
        assert shell.execute(f"{base} -S 7 -n {IMAGES}"), said[-3:]  # images 2-4 get fresh random seeds
        last["seeds"] = [o.seed for o in shell.previous]
        last["batch"] = [Image.open(o.path).convert("RGB") for o in shell.previous]

    def singles():  # the seeds of the latest batch, each image compared with its batched twin
        diffs = []
        for seed, twin in zip(last["seeds"], last["batch"]):
            assert shell.execute(f"{base} -S {seed}"), said[-3:]
            diffs.append(c.pixel_diff(Image.open(shell.previous[0].path).convert("RGB"), twin))
        last["diff"] = (max(d[0] for d in diffs), statistics.mean(d[1] for d in diffs))

    batched()  # warm-up
    times = c.alternate({"batched": batched, "singles": singles}, runs, warmup=0)
    diff = last["diff"]
    return dict(times=times, diff=diff, ratio=c.paired_ratio(times["batched"], times["singles"]))


def main() -> None:
    args = c.workload_parser(__doc__, runs=5, full_runs=2).parse_args()
    c.setup(args.threads)
    print(c.machine())
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for entry, size, steps, runs, label in c.workloads(args):
            r = measure(entry, size, steps, runs, Path(tmp))
            b, s = statistics.median(r["times"]["batched"]), statistics.median(r["times"]["singles"])
            print(f"{label}: -n {IMAGES} median {b:.3f} s, {IMAGES} single commands median {s:.3f} s, "
                  f"median ratio {r['ratio']:.3f}; each image beside its single run: max pixel difference "
                  f"{r['diff'][0]}, mean {r['diff'][1]:.3f}")
            print(f"  -n {IMAGES} runs:  {c.runs_text(r['times']['batched'])}")
            print(f"  singles runs: {c.runs_text(r['times']['singles'])}")
            ratios.append(f"{label} {r['ratio']:.3f}")
    print(f"summary: -n {IMAGES} / {IMAGES} single commands median ratio " + ", ".join(ratios))


if __name__ == "__main__":
    main()
