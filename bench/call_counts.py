"""Work done: UNet, VAE-encode, VAE-decode and text-encoder calls per command, counted by wrapping the
modules' forward/encode/decode, for txt2img and img2img across every sampler and strength, with batches
(-n 2) and without guidance (-C 1). Commands run through `Shell.execute` on the built-in demo model at
64 px, 10 steps, exactly as typed at the prompt.

The minimum for one command of N images:
  UNet          one call per model evaluation the sampler needs for the steps actually run (img2img:
                int(steps x strength)): 1 per step; PLMS one more (its first step is a two-evaluation
                step); second-order samplers (k_heun, k_dpm_2, k_dpm_2_a) 2 per step less 1 (the last step
                has no corrector); each call batched: 2N with guidance (cond + uncond), N with -C 1
  VAE encode    img2img: 1 (the one init image); txt2img: 0
  VAE decode    1 (batch N)
  text encoder  2 (prompt and negative), 1 with -C 1 (no negative is needed)

    .venv/bin/python bench/call_counts.py [--steps 10]
"""

from __future__ import annotations

import _common as c  # noqa: I001  (sets HF_HUB_OFFLINE first)

import tempfile
from pathlib import Path

from invoke_shell.samplers import NAMES as SAMPLERS

SECOND_ORDER = {"k_heun", "k_dpm_2", "k_dpm_2_a"}
STRENGTHS = (0.3, 0.7, 1.0)
PROMPT = "a red star on a blue background"


def minimum(sampler: str, steps: int, strength: float | None, images: int, cfg: float) -> dict:
    run = steps if strength is None else min(int(steps * strength), steps)
    unet = 2 * run - 1 if sampler in SECOND_ORDER else run + 1 if sampler == "plms" else run
    batch = images * (2 if cfg > 1 else 1)
    return dict(unet=unet, batch={batch}, encode=0 if strength is None else 1, decode=1, text=2 if cfg > 1 else 1)


def count(shell, line: str) -> dict:
    pipe = shell.model().txt2img  # the img2img pipeline shares these modules
    with c.count_calls(pipe) as calls:
        assert shell.execute(line), shell.said[-3:]
    return dict(unet=len(calls.unet), batch=set(calls.unet), encode=len(calls.encode), decode=len(calls.decode),
                text=len(calls.text))


def main() -> None:
    parser = c.parser(__doc__)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    c.setup(args.threads)
    from PIL import Image

    from invoke_shell.shell import Shell

    steps = args.steps
    with tempfile.TemporaryDirectory() as tmp:
        init = Path(tmp) / "init.png"
        Image.new("RGB", (64, 64), (200, 40, 40)).save(init)
        said: list[str] = []
        shell = Shell(c.manager(c.demo_entry()), outdir=str(Path(tmp) / "out"), say=said.append, model="demo")
        shell.said = said
        cases = [(s, None, 1, 7.5) for s in SAMPLERS]
        cases += [(s, f, 1, 7.5) for s in SAMPLERS for f in STRENGTHS]
        cases += [("k_lms", None, 2, 7.5), ("k_lms", 0.7, 2, 7.5), ("k_lms", None, 1, 1.0), ("k_lms", 0.7, 1, 1.0)]
        header = (f"{'mode':8} {'sampler':10} {'-f':>4} {'-n':>2} {'-C':>4} | {'UNet':>4} {'batch':>5} {'enc':>3} "
                  f"{'dec':>3} {'text':>4} | {'min UNet':>8} {'enc':>3} {'dec':>3} {'text':>4} | verdict")
        print(header)
        print("-" * len(header))
        above = []
        for sampler, strength, images, cfg in cases:
            line = f'"{PROMPT}" -s {steps} -S 7 -W 64 -H 64 -A {sampler} -C {cfg}'
            if strength is not None:
                line += f" -I {init} -f {strength}"
            if images > 1:
                line += f" -n {images}"
            got = count(shell, line)
            want = minimum(sampler, steps, strength, images, cfg)
            extra = [k for k in ("unet", "batch", "encode", "decode", "text") if got[k] != want[k]]
            mode = "txt2img" if strength is None else "img2img"
            verdict = "minimum" if not extra else "ABOVE: " + ", ".join(extra)
            if extra:
                above.append(f"{mode} {sampler}{f' -f {strength}' if strength else ''}"
                             f"{f' -n {images}' if images > 1 else ''}{' -C 1' if cfg <= 1 else ''} ({', '.join(extra)})")
            batch = ",".join(str(b) for b in sorted(got["batch"]))
            print(f"{mode:8} {sampler:10} {strength or '':>4} {images:>2} {cfg:>4} | {got['unet']:>4} {batch:>5} "
                  f"{got['encode']:>3} {got['decode']:>3} {got['text']:>4} | {want['unet']:>8} {want['encode']:>3} "
                  f"{want['decode']:>3} {want['text']:>4} | {verdict}")
    rows = len(cases)
    print(f"summary: {rows - len(above)} of {rows} commands at the minimum"
          + (f"; above it: {'; '.join(above)}" if above else ""))


if __name__ == "__main__":
    main()
