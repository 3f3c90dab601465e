"""`accelerate launch` with two CPU processes (gloo) over one command file, beside a single `--from_file`
run of the same file: every command runs once, every image is the single run's (those of `-n` and `-v -n`
commands too), prefixes never collide, the summary adds up and a failed command sets the exit status."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ACCELERATE_LAUNCH = [sys.executable, "-m", "accelerate.commands.launch"]  # `accelerate launch`

# Ten generation commands (two back-references, an img2img, -n and -v -n whose every image follows from -S),
# a !switch whose model the later runs carry, and a line that fails: 12 commands, 13 images. Every seed is
# given, so both runs (and any other run of the file) draw the same pictures.
COMMANDS = """\
# the scale-out test file
"fire" -s 3 -S 11 -W 64 -H 64
"fire" -s 3 -S 12 -W 64 -H 64 -A ddim
"fire" -s 3 -S -1 -W 64 -H 64 -A k_euler
"fire" -s 3 -S 13 -W 64 -H 64 -I -1 -f 0.7
!switch demo
"a red circle on a blue background" -s 3 -S 14 -W 64 -H 64
"fire" -s 3 -S 15 -W 64 -H 64 -A k_euler_a
"fire" -s 3 -S 16 -W 64 -H 64 -I -1 -f 0.5
"fire" -s 3 -S 17 -f 7
"a green square" -s 3 -S 18 -W 64 -H 64
"a red star on a blue background" -s 3 -S 9 -W 64 -H 64 -n 3
"fire" -s 3 -S 9 -W 64 -H 64 -v 0.3 -n 2
"""
COMMAND_LINES = [n for n, line in enumerate(COMMANDS.splitlines(), 1) if line and not line.startswith("#")]
IMAGE_LINES = {2, 3, 4, 5, 7, 8, 9, 11, 12, 13}
_ECHO = re.compile(r"^# cmds\.txt:(\d+)  ")
_IMAGE = re.compile(r"^(\S+\.png): ")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def images_by_line(stdout: str, prefixed: bool) -> tuple[dict[int, list[str]], list[int]]:
    """{file line: [image paths]} and the echoed line numbers, from the (per-process prefixed) output."""
    current: dict[str, int] = {}
    images: dict[int, list[str]] = {}
    echoed = []
    for text in stdout.splitlines():
        process = ""
        if prefixed:
            match = re.match(r"^\[(\d+)\] (.*)$", text)
            if not match:
                continue
            process, text = match.groups()
        if echo := _ECHO.match(text):
            current[process] = int(echo.group(1))
            echoed.append(current[process])
        elif image := _IMAGE.match(text):
            images.setdefault(current[process], []).append(image.group(1))
    return images, echoed


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_two_processes_render_what_one_does(tmp_path, manager):
    (tmp_path / "cmds.txt").write_text(COMMANDS)
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    common = ["--from_file", "cmds.txt", "--model", "tiny"]
    multi = subprocess.Popen(
        [*ACCELERATE_LAUNCH, "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
         "-m", "invoke_shell", *common, "-o", "multi"],
        cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    single = subprocess.run([sys.executable, "-m", "invoke_shell", *common, "-o", "single"], cwd=tmp_path, env=env,
                            text=True, capture_output=True, timeout=300)
    out, err = multi.communicate(timeout=300)

    assert single.returncode == 1, single.stdout + single.stderr    # line 10 fails in both
    assert multi.returncode != 0, out + err
    assert single.stdout.splitlines()[-1] == "12 ran, 1 failed"
    assert "error: -f/--strength must be in (0, 1], got 7.0" in out

    single_images, _ = images_by_line(single.stdout, prefixed=False)
    multi_images, echoed = images_by_line(out, prefixed=True)
    assert sorted(echoed) == COMMAND_LINES, out                     # every command exactly once
    assert set(single_images) == set(multi_images) == IMAGE_LINES, out
    for line in IMAGE_LINES:
        names = [[Path(p).name.split(".", 1)[1] for p in found[line]] for found in (single_images, multi_images)]
        assert names[0] == names[1], line                            # the same seeds and sub-seeds
        for a, b in zip(single_images[line], multi_images[line], strict=True):
            assert np.array_equal(pixels(tmp_path / a), pixels(tmp_path / b)), f"line {line}: {a} != {b}"
    assert [n.split(".")[1] for n in map(lambda p: Path(p).name, single_images[12])] == ["9", "10", "11"]
    assert len(multi_images[13]) == 2

    pngs = sorted(p.name for p in (tmp_path / "multi").glob("*.png"))
    prefixes = sorted({name.split(".")[0] for name in pngs})
    assert len(pngs) == 13 and prefixes == [f"{i:06d}" for i in range(1, 11)]  # 10 distinct prefixes, no gap
    assert len((tmp_path / "multi" / "invoke_log.txt").read_text().splitlines()) == 13

    lines = out.splitlines()
    plan_line = "batch cmds.txt: 12 commands in 7 independent runs; process 0: 6 (4 runs), process 1: 6 (3 runs)"
    assert lines.count(plan_line) == 2, out                          # at the start and in the summary
    summary = lines[len(lines) - 1 - lines[::-1].index(plan_line):]
    assert re.fullmatch(r"  process 0 \(cpu\): 4 runs, 6 ran, 1 failed, 7 images, [\d.]+ s", summary[1]), summary
    assert re.fullmatch(r"  process 1 \(cpu\): 3 runs, 6 ran, 0 failed, 6 images, [\d.]+ s", summary[2]), summary
    assert re.fullmatch(r"12 ran, 1 failed, 13 images in [\d.]+ s on 2 processes", summary[3]), summary
    assert len(summary) == 4

