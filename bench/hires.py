"""Hires fix beside a direct render at the large size, in one run, through the shell as a user types them:
time (alternating, median of the per-round ratios) and the model calls of each. On the built-in demo model
(native 64 px) at 2x, 128 px; and on the full-size SD 1.5 architecture (random weights) told that its native
size is 256 px, at 2x, 512 px (its real native 512 would need 1024 px, minutes a step on these CPUs).

    .venv/bin/python bench/hires.py [--runs 5] [--full-runs 3] [--no-full]
"""

from __future__ import annotations

import _common as c  # noqa: I001  (sets HF_HUB_OFFLINE first)

import statistics
import tempfile
from dataclasses import replace

PROMPT = "a red star on a blue background"


def shell_for(manager, outdir: str):
    from invoke_shell.shell import Shell

    said: list[str] = []
    shell = Shell(manager, outdir=outdir, say=said.append)
    shell.said = said
    return shell


def compare(label: str, shell, steps: int, size: int, runs: int) -> None:
    direct = f'"{PROMPT}" -s {steps} -S 7 -W {size} -H {size} -A k_lms'
    lines = {"hires fix": direct + " --hires_fix", "direct": direct}
    calls = {}
    for name, line in lines.items():
        with c.count_calls(shell.model().txt2img) as counted:
            assert shell.execute(line), shell.said[-3:]
        calls[name] = counted
    said = [s for s in shell.said if s.startswith("hires fix:")][-1]
    times = c.alternate({name: (lambda line=line: shell.execute(line)) for name, line in lines.items()}, runs)
    ratio = c.paired_ratio(times["hires fix"], times["direct"])
    print(f"\n## {label}: {size} px, {steps} steps, k_lms")
    print(said)
    for name in lines:
        counted = calls[name]
        print(f"{name:9}: runs {c.runs_text(times[name])} s (median {statistics.median(times[name]):.2f}); "
              f"UNet calls {len(counted.unet)}, VAE encodes {len(counted.encode)}, decodes {len(counted.decode)}")
    print(f"summary: hires fix / direct time {ratio:.3f}")


def main() -> None:
    p = c.parser(__doc__)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--full-runs", type=int, default=3)
    p.add_argument("--no-full", action="store_true")
    args = p.parse_args()
    c.setup(args.threads)
    print(f"# bench/hires.py  {c.machine()}  threads={args.threads}")
    with tempfile.TemporaryDirectory() as out:
        compare("demo model (native 64 px) at 2x", shell_for(c.manager(c.demo_entry()), out), 20, 128, args.runs)
        if not args.no_full:
            entry = replace(c.sd15_entry(), width=256, height=256)
            compare("SD 1.5 architecture told it is native 256 px, at 2x", shell_for(c.manager(entry), out), 4, 512,
                    args.full_runs)


if __name__ == "__main__":
    main()
