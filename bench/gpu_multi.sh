#!/usr/bin/env bash
# Batch rendering on every GPU of the machine beside one process, with accelerate: bench/scaleout.py with
# --device cuda. Prints each count's images/s, the throughput ratio, and how many images of the multi-GPU
# run equal the one-process run's (same seed, same model, float16).
#
#   make test TORCH=torch                                 # once: .venv with torch's CUDA build
#   bench/gpu_multi.sh                                    # the built-in demo model, 64 commands, 20 steps
#   CONF=models.yaml MODEL=sd15 SIZE=512 STEPS=30 COMMANDS=64 bench/gpu_multi.sh
#   PER_GPU=2 bench/gpu_multi.sh                          # also two processes on each GPU
#
# On a machine with one GPU it compares 1 process with 2 sharing it. Without a CUDA device it stops with a
# one-line message and exit status 1.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
GPUS=${GPUS:-$("$PYTHON" -c 'import torch; print(torch.cuda.device_count())')}
if [ "$GPUS" -lt 1 ]; then
  echo "bench/gpu_multi.sh: no CUDA device (is torch's CUDA build installed? make test TORCH=torch)" >&2
  exit 1
fi
COUNTS="1,$GPUS"
if [ "${PER_GPU:-1}" -gt 1 ]; then COUNTS="$COUNTS,$((GPUS * PER_GPU))"; fi
if [ "$COUNTS" = "1,1" ]; then COUNTS="1,2"; fi
exec "$PYTHON" bench/scaleout.py --processes "$COUNTS" --device cuda --model "${MODEL:-demo}" \
  --size "${SIZE:-64}" --steps "${STEPS:-20}" --commands "${COMMANDS:-64}" --runs "${RUNS:-1}" \
  ${CONF:+--conf "$CONF"} "$@"
