#!/usr/bin/env bash
# One short prepared benchmark for a machine with an NVIDIA GPU: the SD 1.5 architecture with random
# weights, float16, 512 px, 20 steps; it/s of the shell beside raw diffusers, peak GPU memory, a cached
# switch (host to device copy) and the cost of --free_gpu_mem. See bench/gpu_run.py and bench/README.md.
#
#   make test TORCH=torch          # once: .venv with torch's CUDA build
#   bench/gpu.sh [--runs 5] [--steps 20] [--size 512]
#   bench/gpu.sh --prepare-only    # only build the 4 GB model folder (CPU; about a minute)
#   bench/gpu.sh --multi           # then the multi-GPU variant: bench/gpu_multi.sh (accelerate, one
#                                  # process per GPU beside one process)
#
# Without a CUDA device it stops with a one-line message and exit status 1.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
if [ "${1:-}" = "--multi" ]; then
    shift
    "$PYTHON" bench/gpu_run.py "$@"
    exec bench/gpu_multi.sh
fi
exec "$PYTHON" bench/gpu_run.py "$@"
