"""Pictures in the terminal: the encoders checked against what they encode, the protocol chosen from the
terminal's environment, and the shell drawing them in a real pseudo-terminal (and nothing into a pipe)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from invoke_shell import pictures
from test_cli import plain_environment, shell_in_pty


def gradient(width=40, height=28) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.uint8)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], axis=-1))


def decode_sixel(text: str) -> tuple[np.ndarray, dict]:
    """(colour index per pixel, {index: (r, g, b) in percent}) from our sixel output."""
    body = text[text.index("q") + 1: text.rindex("\x1b\\")]
    size = re.match(r'"1;1;(\d+);(\d+)', body)
    width, height = int(size.group(1)), int(size.group(2))
    body = body[size.end():]
    palette = {int(i): (int(r), int(g), int(b)) for i, r, g, b in re.findall(r"#(\d+);2;(\d+);(\d+);(\d+)", body)}
    body = re.sub(r"#\d+;2;\d+;\d+;\d+", "", body)
    out = np.full((height, width), -1)
    top = x = colour = 0
    for token in re.findall(r"#\d+|!\d+.|[?-~]|\$|-", body):
        if token.startswith("#"):
            colour = int(token[1:])
        elif token == "$":
            x = 0
        elif token == "-":
            x, top = 0, top + 6
        else:
            count, char = (int(token[1:-1]), token[-1]) if token.startswith("!") else (1, token)
            for _ in range(count):
                bits = ord(char) - 63
                for row in range(6):
                    if bits >> row & 1:
                        out[top + row, x] = colour
                x += 1
    return out, palette


def test_sixel_draws_the_picture_it_was_given():
    image = gradient()
    text = pictures.sixel(image)
    indices, palette = decode_sixel(text)
    expected = image.quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    assert (indices >= 0).all(), "every pixel drawn"
    assert np.array_equal(indices, np.asarray(expected)), "each pixel in its colour"
    flat = expected.getpalette()
    for index, (r, g, b) in palette.items():
        assert (r, g, b) == tuple(round(v * 100 / 255) for v in flat[3 * index: 3 * index + 3])
    assert "!" in pictures.sixel(Image.new("RGB", (30, 6), (9, 9, 9))), "runs are compressed"


def test_half_blocks_carry_two_pixels_a_cell():
    image = gradient(64, 64)
    text = pictures.blocks(image)
    lines = text.rstrip("\n").split("\n")
    cols, rows = pictures._cells(image)
    assert (cols, rows) == (32, 16) and len(lines) == rows and all(line.count("▀") == cols for line in lines)
    small = np.asarray(image.resize((cols, rows * 2), Image.Resampling.LANCZOS))
    first = re.match(r"\x1b\[38;2;(\d+);(\d+);(\d+)m\x1b\[48;2;(\d+);(\d+);(\d+)m▀", lines[3])
    assert tuple(map(int, first.groups())) == (*small[6, 0], *small[7, 0])


def test_kitty_and_iterm2_send_the_png():
    import base64
    import io

    image = gradient()
    kitty = pictures.kitty(image)
    payload = "".join(re.findall(r"\x1b_G[^;]*;([^\x1b]*)\x1b\\", kitty))
    assert kitty.startswith("\x1b_Ga=T,f=100,c=32,r=11,q=2,m=")
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(base64.b64decode(payload)))), np.asarray(image))
    iterm = pictures.iterm2(image)
    data = iterm[iterm.index(":") + 1: iterm.index("\x07")]
    assert iterm.startswith("\x1b]1337;File=inline=1;size=")
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(base64.b64decode(data)))), np.asarray(image))


@pytest.mark.parametrize("environ, found", [
    ({"TERM": "xterm-kitty"}, "kitty"), ({"KITTY_WINDOW_ID": "1", "TERM": "xterm-256color"}, "kitty"),
    ({"TERM_PROGRAM": "ghostty"}, "kitty"), ({"TERM_PROGRAM": "iTerm.app"}, "iterm2"),
    ({"TERM_PROGRAM": "WezTerm"}, "iterm2"), ({"LC_TERMINAL": "iTerm2"}, "iterm2"), ({"TERM": "foot"}, "sixel"),
    ({"TERM": "mlterm"}, "sixel"), ({"TERM": "xterm-256color"}, None),
    ({"TERM": "xterm-kitty", "TMUX": "/tmp/tmux-0/default,1,0"}, None), ({"TERM": "screen-256color"}, None),
])
def test_the_protocol_comes_from_the_environment(environ, found):
    assert pictures.protocol(environ) == found


@pytest.mark.parametrize("environ, marker", [
    ({"TERM": "xterm-kitty"}, b"\x1b_Ga=T,f=100"),
    ({"TERM_PROGRAM": "iTerm.app"}, b"\x1b]1337;File=inline=1"),
    ({"TERM": "foot"}, b'\x1bPq"1;1;'),
    ({"TERM": "xterm-256color"}, "▀".encode()),
])
def test_a_real_terminal_shows_each_picture_and_the_prompt_goes_on(tmp_path, manager, environ, marker):
    with shell_in_pty(tmp_path, **environ) as (fd, screen):
        screen.expect(b"invoke>", 60)
        os.write(fd, b'"fire" -s 2 -S 7\r')
        screen.expect(b"outputs/000001.7.png", 90)
        screen.expect(marker, 30)
        screen.expect(b"invoke>", 30)
        os.write(fd, b"!preview off\r")
        screen.expect(b"preview: off", 30)
        screen.expect(b"invoke>", 30)
        os.write(fd, b'"fire" -s 2 -S 8\r')
        screen.expect(b"outputs/000002.8.png", 60)
        screen.expect(b"invoke>", 30)
        after = screen.text[screen.text.rindex(b"000002.8.png"):]
        assert marker not in after, "--preview off draws nothing"
        os.write(fd, b"!show 000001.7.png 000002.8.png\r")
        screen.expect(b"invoke>", 30)
        os.write(fd, b"!preview blocks\r!show 000001.7.png 000002.8.png\r")
        screen.expect("▀".encode(), 30)
        screen.expect(b"invoke>", 30)
        os.write(fd, b"!diff 000001.7.png 000002.8.png\r")
        screen.expect(b"of the pixels differ", 30)
        screen.expect("▀".encode(), 30)
        screen.expect(b"invoke>", 30)
        os.write(fd, b"\x04")
    assert b"Traceback" not in screen.text


def test_no_pictures_into_a_pipe(tmp_path):
    result = subprocess.run([sys.executable, "-m", "invoke_shell", "--from_file", "-"], cwd=tmp_path, text=True,
                            input='"fire" -s 2 -S 7\n!show outputs/000001.7.png\n!preview\n', capture_output=True,
                            env={**plain_environment(), "TERM": "xterm-kitty"}, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "\x1b" not in result.stdout and "▀" not in result.stdout
    assert "!show: pictures are drawn only in a terminal, and the output here is not one" in result.stdout
    assert "preview: inline (kitty here) (the output is not a terminal: nothing is drawn)" in result.stdout


def test_preview_off_at_launch_draws_nothing(tmp_path, manager):
    with shell_in_pty(tmp_path, "--preview", "off", TERM="xterm-256color") as (fd, screen):
        screen.expect(b"invoke>", 60)
        os.write(fd, b'"fire" -s 2 -S 7\r')
        screen.expect(b"outputs/000001.7.png", 90)
        screen.expect(b"invoke>", 30)
        os.write(fd, b"!preview\r")
        screen.expect(b"preview: off", 30)
        screen.expect(b"invoke>", 30)
        os.write(fd, b"\x04")
    assert "▀".encode() not in screen.text and b"\x1b_G" not in screen.text
