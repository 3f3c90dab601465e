"""LoRAs: the shell's engine (engine/adapters.py, as a command naming a LoRA drives it) beside raw diffusers
(`load_lora_weights(path, adapter_name=...)` and `set_adapters`, as diffusers' documentation writes it), in one
run, on the built-in demo model and on the full-size SD 1.5 architecture (random weights):

- first load of a LoRA file (rank 16 kohya .safetensors, UNet and text encoder; each run loads it afresh);
- a switch between two LoRAs already loaded (the shell: `apply` for the other LoRA; raw: `set_adapters`);
- a whole generation with the LoRA active (the engine's run beside a raw pipeline call, same seed) and its
  ratio; the goal is 1.02x, and identical pixels.

    .venv/bin/python bench/lora.py [--runs 9] [--full-runs 3] [--no-full]
"""

from __future__ import annotations

import _common as c  # noqa: I001  (sets HF_HUB_OFFLINE first)

import statistics
import tempfile
import time
from pathlib import Path

PROMPT = "a red star on a blue background"
STEP_GOAL = 1.02
SWITCH_GOAL_MS = 50


def make_loras(pipe, folder: Path) -> list[Path]:
    from invoke_shell.toymodel.adapters import lora_layers, write_lora

    return [write_lora(lora_layers(pipe.unet, pipe.text_encoder, rank=16, seed=seed, scale=0.05),
                       folder / f"bench{seed}.safetensors", "kohya") for seed in (1, 2)]


def median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


def first_loads(model, raw, files: list[Path], runs: int) -> dict[str, list[float]]:
    """Each run loads the file afresh into both (the shell: a new adapter state; raw: a new adapter name)."""
    from invoke_shell.engine import adapters
    from invoke_shell.models.library import Library
    from invoke_shell.prompt_extras import extract

    library = Library([files[0].parent], [])
    times = {"shell": [], "diffusers": []}
    for run in range(runs + 1):
        for name in ("shell", "diffusers"):
            start = time.perf_counter()
            if name == "shell":
                adapters.apply(model, extract(f"x withLora({files[0].stem})"), library)
            else:
                raw.load_lora_weights(str(files[0]), adapter_name=f"first{run}")
            elapsed = time.perf_counter() - start
            if run:
                times[name].append(elapsed)
            if name == "shell":  # forget it again, so the next run loads from the file
                adapters.apply(model, extract("x"), library)
                state = adapters.state(model)
                adapters._drop(model, state, files[0].stem)
            else:
                raw.delete_adapters(f"first{run}")
    return times


def switches(model, raw, files: list[Path], runs: int) -> dict[str, list[float]]:
    from invoke_shell.engine import adapters
    from invoke_shell.models.library import Library
    from invoke_shell.prompt_extras import extract

    library = Library([files[0].parent], [])
    for file in files:
        adapters.apply(model, extract(f"x withLora({file.stem})"), library)
        raw.load_lora_weights(str(file), adapter_name=file.stem)
    times = {"shell": [], "diffusers": []}
    for run in range(2 * runs + 1):
        file = files[run % 2]
        start = time.perf_counter()
        adapters.apply(model, extract(f"x withLora({file.stem},0.8)"), library)
        shell = time.perf_counter() - start
        start = time.perf_counter()
        raw.set_adapters([file.stem], [0.8])
        plain = time.perf_counter() - start
        if run:
            times["shell"].append(shell)
            times["diffusers"].append(plain)
    return times


def generation(model, raw, files: list[Path], size: int, steps: int, runs: int) -> dict:
    from dataclasses import replace

    from invoke_shell.engine import adapters
    from invoke_shell.models.library import Library

    library = Library([files[0].parent], [])
    req = replace(c.request(PROMPT, steps, size, 7), prompt=f"{PROMPT} withLora({files[0].stem},0.8)")
    adapters.apply(model, req.extras, library)
    raw.set_adapters([files[0].stem], [0.8])
    images = {}

    def engine():
        adapters.apply(model, req.extras, library)
        images["engine"] = c.engine_generate(model, req)[0]

    def diffusers():
        images["diffusers"] = c.raw_txt2img(raw, PROMPT, steps, size, 7)[0]

    times = c.alternate({"engine": engine, "diffusers": diffusers}, runs)
    return dict(times=times, ratio=c.paired_ratio(times["engine"], times["diffusers"]),
                diff=c.pixel_diff(images["engine"], images["diffusers"]))


def main() -> None:
    args = c.workload_parser(__doc__, runs=9, full_runs=3).parse_args()
    c.setup(args.threads)
    print(f"# bench/lora.py  {c.machine()}  threads={args.threads}")
    for entry, size, steps, runs, label in c.workloads(args):
        manager = c.manager(entry)
        model = manager.activate(entry.name)
        raw = c.raw_pipeline(model.folder)
        with tempfile.TemporaryDirectory() as tmp:
            files = make_loras(model.txt2img, Path(tmp))
            loads = first_loads(model, raw, files, max(3, runs // 3))
            swaps = switches(model, raw, files, runs)
            run = generation(model, raw, files, size, steps, runs)
        print(f"\n## {label}")
        print(f"first load of a LoRA   shell {median_ms(loads['shell']):8.1f} ms   diffusers "
              f"{median_ms(loads['diffusers']):8.1f} ms   ratio "
              f"{c.paired_ratio(loads['shell'], loads['diffusers']):.3f}")
        print(f"switch between cached  shell {median_ms(swaps['shell']):8.2f} ms   diffusers "
              f"{median_ms(swaps['diffusers']):8.2f} ms   ratio {c.paired_ratio(swaps['shell'], swaps['diffusers']):.3f}"
              f"   (goal under {SWITCH_GOAL_MS} ms on the demo model)")
        engine, plain = run["times"]["engine"], run["times"]["diffusers"]
        print(f"generation with LoRA   engine {median_ms(engine):8.1f} ms   diffusers {median_ms(plain):8.1f} ms   "
              f"ratio {run['ratio']:.3f} (goal {STEP_GOAL})   pixels: max diff {run['diff'][0]}, "
              f"mean {run['diff'][1]:.3f}")


if __name__ == "__main__":
    main()
