"""The README's screenshot: a real session of the shell in a pseudo-terminal (TERM=xterm-256color, 100 x 46),
its output played through the headless terminal emulator `pyte`, and the emulator's screen drawn to a PNG
cell by cell (DejaVu Sans Mono; half-block cells drawn as their two colours). So the picture is what a
terminal shows: the prompt, the command, its lines, the half-block thumbnail, the toolbar.

    .venv/bin/pip install 'pyte>=0.8'      # the docs extra: pip install -e .[docs]
    .venv/bin/python scripts/make_screenshot.py [--out docs/screenshot.png]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import signal
import struct
import sys
import tempfile
import termios
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
COLUMNS, ROWS = 100, 46
CELL = (10, 20)
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
COMMANDS = ['"a red star on a blue background" -s 20 -S 7 -W 64 -H 64', '"fire" -s 20 -S 3 -n 3']
BACKGROUND, FOREGROUND = (30, 30, 30), (220, 220, 220)
NAMED = {"black": (0, 0, 0), "red": (205, 49, 49), "green": (13, 188, 121), "brown": (229, 229, 16),
         "blue": (36, 114, 200), "magenta": (188, 63, 188), "cyan": (17, 168, 205), "white": (229, 229, 229)}


def session() -> bytes:
    """The bytes the shell writes to its terminal while a user types COMMANDS and then Ctrl-D."""
    work = Path(tempfile.mkdtemp())
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TERM_PROGRAM", "KITTY_WINDOW_ID")}
    env.update(TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1", OMP_NUM_THREADS="1", PYTHONFAULTHANDLER="1",
               INVOKE_SHELL_CACHE=str(work / "cache"))
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(work)
        os.execvpe(sys.executable, [sys.executable, "-m", "invoke_shell", "--model", "demo", "--precision",
                                    "float32"], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    text = b""

    def until(needle: bytes, timeout: float = 120) -> None:
        nonlocal text
        deadline = time.monotonic() + timeout
        start = len(text)
        while needle not in text[start:]:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGABRT)  # PYTHONFAULTHANDLER: the shell's threads' stacks, for the error
                time.sleep(2)
                while select.select([fd], [], [], 0.5)[0]:
                    text += os.read(fd, 65536)
                sys.exit(f"the shell did not show {needle!r}:\n{text[-6000:].decode(errors='replace')}")
            if select.select([fd], [], [], 0.5)[0]:
                text += os.read(fd, 65536)

    until(b"invoke>")
    for line in COMMANDS:
        os.write(fd, line.encode() + b"\r")
        until(b".png: ")  # the picture's line (the prompt's own redraw shows "invoke>" at once)
        until(b"invoke>")
    time.sleep(0.5)
    screen = text
    os.write(fd, b"!quit\r")
    try:
        while select.select([fd], [], [], 5)[0]:
            text += os.read(fd, 65536)
    except OSError:  # the shell has gone
        pass
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return screen


def colour(value: str, default: tuple[int, int, int]) -> tuple[int, int, int]:
    if value == "default":
        return default
    if value in NAMED:
        return NAMED[value]
    if value.startswith("bright") and value[6:] in NAMED:
        return tuple(min(255, c + 40) for c in NAMED[value[6:]])
    try:
        return tuple(int(value[i:i + 2], 16) for i in (0, 2, 4))
    except ValueError:
        return default


def draw(screen) -> Image.Image:
    image = Image.new("RGB", (COLUMNS * CELL[0], ROWS * CELL[1]), BACKGROUND)
    pen = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 16)
    for y in range(ROWS):
        row = screen.buffer[y]
        for x in range(COLUMNS):
            char = row[x]
            fg, bg = colour(char.fg, FOREGROUND), colour(char.bg, BACKGROUND)
            if char.reverse:
                fg, bg = bg, fg
            box = (x * CELL[0], y * CELL[1], (x + 1) * CELL[0] - 1, (y + 1) * CELL[1] - 1)
            if char.data == "▀":
                pen.rectangle((box[0], box[1], box[2], box[1] + CELL[1] // 2 - 1), fill=fg)
                pen.rectangle((box[0], box[1] + CELL[1] // 2, box[2], box[3]), fill=bg)
                continue
            pen.rectangle(box, fill=bg)
            if char.data.strip():
                pen.text((box[0], box[1] + 1), char.data, font=font, fill=fg)
    return image


def main() -> None:
    import pyte

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    out = Path(parser.parse_args().out)
    screen = pyte.Screen(COLUMNS, ROWS)
    pyte.ByteStream(screen).feed(session())
    out.parent.mkdir(parents=True, exist_ok=True)
    draw(screen).save(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
