"""One short run for a machine with an NVIDIA GPU (started by bench/gpu.sh): the SD 1.5 architecture with
random weights, float16, 512 px, 20 steps. Prints
1. it/s of the shell's engine beside a hand-written diffusers call (alternating, median of N), and the
   pixel difference of their images;
2. peak GPU memory of each;
3. a cached switch back to the model (it waits in CPU RAM: a host-to-device copy), median of N;
4. the cost of --free_gpu_mem (accelerate's model offload): time per image and peak GPU memory.

    bench/gpu.sh [--runs 5] [--steps 20] [--size 512]
    bench/gpu.sh --prepare-only     # build the model folder (CPU only), then stop
"""

from __future__ import annotations

import _common as c  # noqa: I001  (sets HF_HUB_OFFLINE first)

import statistics
import sys
import time

PROMPT = "a red star on a blue background"
SEED = 7
GIB = 1024 ** 3


def peak_and_time(fn, sync) -> tuple[float, float, object]:
    import torch

    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    out = fn()
    sync()
    return time.perf_counter() - start, torch.cuda.max_memory_allocated() / GIB, out


def main() -> None:
    parser = c.parser(__doc__)
    parser.add_argument("--runs", type=int, default=5, help="alternating runs (default 5)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--prepare-only", action="store_true", help="build the model folder, then stop")
    parser.set_defaults(threads=None)  # torch's default: all physical cores for the CPU-side work
    args = parser.parse_args()
    if args.prepare_only:
        c.setup(args.threads)
        print(f"model folder ready: {c.sd15_folder()}")
        return
    import torch

    if not torch.cuda.is_available():
        sys.exit(f"bench/gpu.sh: no CUDA device (torch {torch.__version__}: torch.cuda.is_available() is False); "
                 f"run it on a machine with an NVIDIA GPU and torch's CUDA build")
    c.setup(args.threads)
    folder = c.sd15_folder()
    sync = torch.cuda.synchronize
    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, {c.machine()}")
    steps, size = args.steps, args.size
    req = c.request(PROMPT, steps, size, SEED)

    # 1-2. engine beside raw diffusers; each one's peak memory measured while it is alone on the GPU
    from invoke_shell.models.manager import ModelManager

    registry = c.registry(c.sd15_entry(), c.demo_entry())
    manager = ModelManager(registry, device="cuda", precision="float16", max_loaded=2)
    model = manager.activate("sd15")
    c.engine_generate(model, req)  # warm-up
    engine_peak = peak_and_time(lambda: c.engine_generate(model, req), sync)[1]
    raw = c.raw_pipeline(folder, torch.float16).to("cuda")
    images = {}

    def engine():
        images["engine"] = c.engine_generate(model, req)[0]
        sync()

    def diffusers():
        images["diffusers"] = c.raw_txt2img(raw, PROMPT, steps, size, SEED)[0]
        sync()

    times = c.alternate({"engine": engine, "diffusers": diffusers}, args.runs)
    ratio = c.paired_ratio(times["diffusers"], times["engine"])  # it/s engine / it/s diffusers
    e, d = statistics.median(times["engine"]), statistics.median(times["diffusers"])
    diff = c.pixel_diff(images["engine"], images["diffusers"])
    print(f"SD 1.5 size {size} px {steps} steps float16: engine {steps / e:.2f} it/s ({e:.2f} s/image), "
          f"diffusers {steps / d:.2f} it/s ({d:.2f} s/image), median it/s ratio {ratio:.3f}; "
          f"pixel difference max {diff[0]}, mean {diff[1]:.3f}")
    print(f"  engine runs:    {c.runs_text(times['engine'])}")
    print(f"  diffusers runs: {c.runs_text(times['diffusers'])}")
    manager.activate("demo")  # sd15 to CPU RAM: diffusers alone on the GPU
    torch.cuda.empty_cache()
    raw_peak = peak_and_time(lambda: c.raw_txt2img(raw, PROMPT, steps, size, SEED), sync)[1]
    print(f"peak GPU memory: engine {engine_peak:.2f} GiB, diffusers {raw_peak:.2f} GiB")
    del raw
    torch.cuda.empty_cache()

    # 3. cached switch: sd15 waits in CPU RAM while demo is active, then comes back to the GPU
    switches = []
    manager.activate("sd15")  # warm-up
    for _ in range(args.runs):
        manager.activate("demo")
        sync()
        start = time.perf_counter()
        manager.activate("sd15")
        sync()
        switches.append(time.perf_counter() - start)
    assert manager.disk_loads == 2, "cached switches must read nothing from disk"
    switch = statistics.median(switches)
    print(f"cached switch to SD 1.5 size (host to device copy): median {switch:.3f} s "
          f"(runs: {c.runs_text(switches, 1, 3)})")

    # 4. --free_gpu_mem: accelerate's model offload
    manager.activate("demo")  # sd15 back in CPU RAM
    torch.cuda.empty_cache()
    offload = ModelManager(registry, device="cuda", precision="float16", max_loaded=1, offload="model")
    off_model = offload.activate("sd15")
    c.engine_generate(off_model, req)  # warm-up
    off_times, off_peaks = [], []
    for _ in range(max(2, args.runs // 2)):
        t, peak, _ = peak_and_time(lambda: c.engine_generate(off_model, req), sync)
        off_times.append(t)
        off_peaks.append(peak)
    o = statistics.median(off_times)
    print(f"--free_gpu_mem (model offload): {steps / o:.2f} it/s ({o:.2f} s/image, {o / e:.2f}x the resident "
          f"engine), peak GPU memory {max(off_peaks):.2f} GiB")
    print(f"summary: engine/diffusers it/s {ratio:.3f}; peak GPU memory {engine_peak:.2f} GiB "
          f"(diffusers {raw_peak:.2f}); cached switch {switch:.3f} s; --free_gpu_mem "
          f"{o / e:.2f}x time, peak {max(off_peaks):.2f} GiB")


if __name__ == "__main__":
    main()
