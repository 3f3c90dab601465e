"""Batch rendering throughput: one command file run by one process (`python -m invoke_shell --from_file`)
and by N processes (`accelerate launch --multi_gpu --num_processes N -m invoke_shell --from_file`),
alternating, end to end (start-up and model loads included, as a user waits for them). Each image of
the N-process runs is compared with the 1-process run's image of the same seed.

    .venv/bin/python bench/scaleout.py [--processes 1,2] [--commands 16] [--steps 10] [--runs 1]

Every process gets --threads OpenMP threads (default 1): the same thread count in every run keeps the
images bit-identical (a different count changes the order of float sums, and some pixels by one level).
`--threads auto` gives each of N processes cores/N threads instead, so every run uses the same cores. On
a machine with GPUs the processes go one per GPU (several share a GPU when N exceeds the GPUs).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
ACCELERATE_LAUNCH = [sys.executable, "-m", "accelerate.commands.launch"]  # `accelerate launch`
PROMPTS = ["fire", "a red circle on a blue background", "a yellow star on a green background",
           "a blue square on a white background"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_commands(path: Path, count: int, steps: int, size: int) -> None:
    """`count` txt2img commands with distinct seeds, through the template expander."""
    sys.path.insert(0, str(HERE.parent))
    from invoke_shell.batch.template import expand

    lines = expand({"mode": "zip", "prompts": [PROMPTS[i % len(PROMPTS)] for i in range(count)],
                    "seeds": list(range(1000, 1000 + count)), "steps": steps, "width": size, "height": size})
    path.write_text("\n".join(lines) + "\n")


def run(processes: int, workdir: Path, args) -> tuple[float, Path]:
    outdir = workdir / f"out{processes}"
    shutil.rmtree(outdir, ignore_errors=True)
    threads = max(1, (os.cpu_count() or 1) // processes) if args.threads == "auto" else int(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1")
    shell = ["--from_file", "cmds.txt", "--model", args.model, "-o", outdir.name, "--device", args.device]
    if args.conf:
        shell += ["--conf", str(Path(args.conf).resolve())]
    if processes == 1:
        command = [sys.executable, "-m", "invoke_shell", *shell]
    else:
        command = [*ACCELERATE_LAUNCH, "--multi_gpu", "--num_processes", str(processes), "--num_machines", "1",
                   "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
                   "-m", "invoke_shell", *shell]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=workdir, env=env, text=True, capture_output=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{processes} process(es) failed (exit {result.returncode}):\n"
                 f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return seconds, outdir


def by_seed(outdir: Path) -> dict[str, np.ndarray]:
    images = {}
    for path in outdir.glob("*.png"):
        seed = re.match(r"^\d+\.(\d+)\.png$", path.name).group(1)
        with Image.open(path) as im:
            images[seed] = np.asarray(im.convert("RGB"))
    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", default="1,2", help="process counts to compare, the first is the baseline")
    parser.add_argument("--commands", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--model", default="demo")
    parser.add_argument("--conf", default=None, help="a models.yaml naming --model (default: the built-in models)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", default="1", help="OpenMP threads per process, or auto: cores/N (default 1)")
    parser.add_argument("--runs", type=int, default=1, help="runs of each, alternating; the median is reported")
    args = parser.parse_args()
    counts = [int(n) for n in args.processes.split(",")]
    times: dict[int, list[float]] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        write_commands(workdir / "cmds.txt", args.commands, args.steps, args.size)
        same: dict[int, int] = {}
        for _ in range(args.runs):
            outdirs = {}
            for n in counts:
                seconds, outdirs[n] = run(n, workdir, args)
                times[n].append(seconds)
            base = by_seed(outdirs[counts[0]])
            for n in counts[1:]:
                other = by_seed(outdirs[n])
                same[n] = sum(seed in other and np.array_equal(image, other[seed]) for seed, image in base.items())
    print(f"{os.cpu_count()} CPUs; model {args.model}, {args.commands} commands (-s {args.steps}, "
          f"{args.size}x{args.size}), device {args.device}, threads per process {args.threads}")
    rate = {}
    for n in counts:
        median = statistics.median(times[n])
        rate[n] = args.commands / median
        label = f"{n} process{'es' * (n != 1)}"
        print(f"{label:12} median {median:6.1f} s  {rate[n]:.3f} images/s  "
              f"(runs: {', '.join(f'{t:.1f}' for t in times[n])})")
    base = counts[0]
    ratios = "; ".join(f"{n}/{base} processes throughput = {rate[n] / rate[base]:.2f}, "
                       f"images identical to the {base}-process run: {same[n]}/{args.commands}" for n in counts[1:])
    print(f"summary: {ratios}")


if __name__ == "__main__":
    main()
