"""Start-up and model switching, measured side by side in one run and printed as ratios.

1. Time until `invoke>` is shown (the shell run in a pseudo-terminal) beside `python -c "import diffusers"`,
   alternating, median of N.
2. A cached `!switch` (the model waits in RAM) beside an uncached one (read from disk), on two tiny
   models built for the run, alternating, median of N.
3. The same at full size: switching from the built-in demo model to the SD 1.5 architecture with random
   weights (about 4 GB), cached beside uncached, alternating, median of --full-runs. diffusers reads
   safetensors through a memory map, so part of an uncached load is paid by the first generation; each
   full-size switch is therefore timed twice: the switch alone, and the switch plus a 1-step 64 px image.

    .venv/bin/python bench/startup_and_switch.py [--runs 7] [--full-runs 5] [--no-full] [--threads 2]
"""

from __future__ import annotations

import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as c


def time_to_prompt(workdir: str) -> float:
    env = dict(os.environ, PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm")
    start = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(workdir)
        os.execvpe(sys.executable, [sys.executable, "-m", "invoke_shell", "-o", "out"], env)
    seen = b""
    try:
        while b"invoke>" not in seen:
            ready, _, _ = select.select([fd], [], [], 60)
            if not ready:
                raise RuntimeError("no prompt within 60 s")
            seen += os.read(fd, 65536)
        return time.perf_counter() - start
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)


def time_import_diffusers() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import diffusers"], check=True)
    return time.perf_counter() - start


def switch_times(runs: int, root: Path) -> tuple[list[float], list[float]]:
    from invoke_shell.models.builtin import build_tiny
    from invoke_shell.models.manager import ModelManager
    from invoke_shell.models.registry import load_registry

    for i, name in enumerate(("a", "b")):
        build_tiny(root / name, seed=i)
    (root / "models.yaml").write_text("".join(f"{n}:\n  format: diffusers\n  path: {n}\n" for n in "ab"))
    cached = ModelManager(load_registry(root / "models.yaml"), device="cpu", max_loaded=2)
    uncached = ModelManager(load_registry(root / "models.yaml"), device="cpu", max_loaded=1)
    for manager in (cached, uncached):  # warm-up: imports, page cache
        manager.activate("a")
        manager.activate("b")
    hits, misses = [], []
    for i in range(runs):
        name = "ab"[i % 2]
        for manager, out in ((cached, hits), (uncached, misses)):
            start = time.perf_counter()
            manager.activate(name)
            out.append(time.perf_counter() - start)
    assert cached.disk_loads == 2, "cached switches must read nothing from disk"
    return hits, misses


def full_switch_times(runs: int) -> dict[str, list[float]]:
    """Switch demo -> sd15 on a manager that keeps both (cached) and on one that keeps one (uncached)."""
    c.sd15_folder()
    cached = c.manager(c.demo_entry(), c.sd15_entry(), max_loaded=2)
    uncached = c.manager(c.demo_entry(), c.sd15_entry(), max_loaded=1)
    req = c.request("a red star", 1, 64, 7)
    out: dict[str, list[float]] = {k: [] for k in ("cached", "uncached", "cached+image", "uncached+image")}
    for manager in (cached, uncached):  # warm-up: imports, page cache
        manager.activate("sd15")
        c.engine_generate(manager.active, req)
    for i in range(runs):
        pairs = ((cached, "cached"), (uncached, "uncached"))
        for manager, key in pairs if i % 2 == 0 else pairs[::-1]:
            manager.activate("demo")
            start = time.perf_counter()
            model = manager.activate("sd15")
            out[key].append(time.perf_counter() - start)
            c.engine_generate(model, req)
            out[key + "+image"].append(time.perf_counter() - start)
    assert cached.disk_loads == 2, "cached switches must read nothing from disk"
    return out


def main() -> None:
    args = c.workload_parser(__doc__, runs=7, full_runs=5, full_what="switches").parse_args()
    c.setup(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        time_to_prompt(tmp), time_import_diffusers()  # warm-up
        prompt, imports = [], []
        for _ in range(args.runs):
            prompt.append(time_to_prompt(tmp))
            imports.append(time_import_diffusers())
        hits, misses = switch_times(args.runs, Path(tmp))
    p, d = statistics.median(prompt), statistics.median(imports)
    h, m = statistics.median(hits), statistics.median(misses)
    print(f"time to invoke> prompt     median {p:.3f} s  (runs: {', '.join(f'{x:.2f}' for x in prompt)})")
    print(f"python -c 'import diffusers' median {d:.3f} s  (runs: {', '.join(f'{x:.2f}' for x in imports)})")
    print(f"cached switch (tiny model)   median {h * 1000:.2f} ms")
    print(f"uncached switch (tiny model) median {m * 1000:.2f} ms")
    summary = f"summary: prompt/import-diffusers = {p / d:.3f}; cached/uncached switch = {h / m:.4f} (tiny)"
    if not args.no_full:
        full = {k: statistics.median(v) for k, v in full_switch_times(args.full_runs).items()}
        for key in ("cached", "uncached"):
            print(f"{key + ' switch (SD 1.5 size)':30} median {full[key]:.3f} s; with a 1-step 64 px image "
                  f"{full[key + '+image']:.3f} s")
        summary += (f", {full['cached'] / full['uncached']:.4f} (SD 1.5 size; with the first image "
                    f"{full['cached+image'] / full['uncached+image']:.3f})")
    print(summary)


if __name__ == "__main__":
    main()
