"""The installed command as a user runs it: --from_file, launch options, and a real terminal."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import subprocess
import sys
import time

import pytest

from invoke_shell.outputs.pngio import read_text_chunks


def run_cli(args, cwd, stdin=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "invoke_shell", *args], cwd=cwd, input=stdin, text=True,
                          capture_output=True, timeout=timeout, env=os.environ.copy())


@pytest.fixture
def sketch(tmp_path):
    from PIL import Image

    im = Image.new("RGB", (80, 64), (240, 240, 240))
    im.paste((200, 40, 10), (20, 10, 60, 50))
    im.save(tmp_path / "sketch.png")
    return "sketch.png"


def test_from_file_writes_images_with_metadata(tmp_path, sketch, manager):
    (tmp_path / "cmds.txt").write_text(
        "# the seed's walkthrough at the model's size\n"
        '"fire" -s 10 -S 1592514025 -W 64 -H 64 -A k_lms\n'
        f'"fire" -s 10 -S 1592514025 -W 64 -H 64 -A k_lms -I {sketch} -f 0.7\n')
    result = run_cli(["--from_file", "cmds.txt", "-s", "5"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        '# cmds.txt:2  "fire" -s 10 -S 1592514025 -W 64 -H 64 -A k_lms',
        "waiting for model demo to load...",
        'outputs/000001.1592514025.png: "fire" -s 10 -S 1592514025 -W 64 -H 64 -C 7.5 -A k_lms',
        f'# cmds.txt:3  "fire" -s 10 -S 1592514025 -W 64 -H 64 -A k_lms -I {sketch} -f 0.7',
        "img2img: strength 0.70 x 10 steps -> 7 of 10 steps from the init image",
        f'outputs/000002.1592514025.png: "fire" -s 10 -S 1592514025 -W 64 -H 64 -C 7.5 -A k_lms -I {sketch} -f 0.7',
        "2 ran, 0 failed",
    ]
    chunks = read_text_chunks(str(tmp_path / "outputs/000002.1592514025.png"))
    assert chunks["Dream"] == lines[5].split(": ", 1)[1]
    meta = json.loads(chunks["sd-metadata"])["image"]
    assert (meta["type"], meta["init_img"], meta["strength"], meta["steps_run"]) == ("img2img", sketch, 0.7, 7)
    log = (tmp_path / "outputs/invoke_log.txt").read_text().splitlines()
    assert log == [lines[2], lines[5]]
    assert result.stderr == ""


def test_from_stdin_and_failures_set_the_exit_status(tmp_path, manager):
    result = run_cli(["--from_file", "-"], cwd=tmp_path, stdin='"fire" -s 2 -S 1\n"fire" -f 7\n"fire" -r 1\n')
    assert result.returncode == 1
    assert "error: -r (--inpaint_replace) is an InvokeAI switch that invoke-shell does not support" in result.stdout
    assert result.stdout.splitlines()[-1] == "3 ran, 2 failed"
    assert "Traceback" not in result.stdout + result.stderr


def test_launch_defaults_apply_to_each_line(tmp_path, manager):
    result = run_cli(["--from_file", "-", "-s", "3", "-C", "4", "-A", "ddim", "-W", "48", "-H", "32"], cwd=tmp_path,
                     stdin='"fire" -S 1\n"fire" -S 1 -s 2 -A k_euler\n')
    assert result.returncode == 0, result.stdout
    out = [l for l in result.stdout.splitlines() if l.startswith("outputs/")]
    assert out[0].endswith('"fire" -s 3 -S 1 -W 48 -H 32 -C 4.0 -A ddim')
    assert out[1].endswith('"fire" -s 2 -S 1 -W 48 -H 32 -C 4.0 -A k_euler')  # not sticky


def test_models_yaml_picks_the_model(tmp_path, manager):
    (tmp_path / "models.yaml").write_text(
        f"mine:\n  description: a local copy\n  format: diffusers\n  path: {manager.active.folder}\n  default: true\n")
    result = run_cli(["--from_file", "-"], cwd=tmp_path, stdin='!models\n"fire" -s 2 -S 1\n')
    assert result.returncode == 0, result.stdout
    meta = json.loads(read_text_chunks(str(tmp_path / "outputs/000001.1.png"))["sd-metadata"])
    assert meta["model_id"] == "mine"


def test_bad_models_yaml_is_one_line(tmp_path):
    (tmp_path / "models.yaml").write_text("mine:\n  path: [unclosed\n")
    result = run_cli(["--from_file", "-"], cwd=tmp_path, stdin="")
    assert result.returncode == 2
    assert result.stderr.startswith("invoke-shell: models.yaml: malformed YAML at line 3")
    assert len(result.stderr.splitlines()) == 1


class Screen:
    """What a pseudo-terminal showed; `expect` waits for text after what was already matched."""

    def __init__(self, fd):
        self.fd, self.text, self.pos = fd, b"", 0

    def expect(self, needle: bytes, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text[self.pos:]:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {needle!r}; screen: {self.text[-2000:]!r}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    self.text += os.read(self.fd, 65536)
                except OSError:  # the shell exited
                    raise AssertionError(f"the shell exited waiting for {needle!r}; screen: {self.text[-2000:]!r}")
        self.pos = self.text.index(needle, self.pos) + len(needle)


TERMINAL_NAMES = ("TMUX", "TERM_PROGRAM", "KITTY_WINDOW_ID", "LC_TERMINAL", "STY")


def plain_environment() -> dict:
    """This process's environment without what names the terminal it runs in (tmux, kitty, iTerm2...)."""
    return {k: v for k, v in os.environ.items() if k not in TERMINAL_NAMES}


@contextlib.contextmanager
def shell_in_pty(cwd, *args, **environ):
    """`python -m invoke_shell *args` in a pseudo-terminal in `cwd` (TERM=xterm unless `environ` says otherwise);
    yields (fd, Screen). On leaving, the shell must have exited with status 0 (the body ends by quitting it)."""
    env = {**plain_environment(), "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm", **environ}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the shell
        os.chdir(cwd)
        os.execvpe(sys.executable, [sys.executable, "-m", "invoke_shell", *args], env)
    try:
        yield fd, Screen(fd)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    finally:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


def test_real_terminal_ctrl_c_cancels_a_generation_and_the_shell_goes_on(tmp_path, manager):
    """In a pseudo-terminal, as a user: the prompt appears, Ctrl-C stops a long generation, the next
    command runs on the still-loaded model, Ctrl-D leaves."""
    with shell_in_pty(tmp_path) as (fd, screen):
        screen.expect(b"invoke>", 60)
        os.write(fd, b'"fire" -s 2 -S 7\r')
        screen.expect(b"outputs/000001.7.png", 90)
        screen.expect(b"invoke>", 30)
        os.write(fd, b'"fire" -s 1000 -S 1 -W 256 -H 256\r')
        time.sleep(2)
        os.write(fd, b"\x03")
        screen.expect(b"cancelled", 60)
        screen.expect(b"invoke>", 30)
        os.write(fd, b'"fire" -s 2 -S 8\r')
        screen.expect(b"outputs/000002.8.png", 60)
        screen.expect(b"invoke>", 30)
        os.write(fd, b"\x04")
    assert b"Traceback" not in screen.text
    assert sorted(p for p in os.listdir(tmp_path / "outputs") if p.endswith(".png")) == ["000001.7.png", "000002.8.png"]
    assert not [p for p in os.listdir(tmp_path / "outputs") if p.endswith(".tmp")]


def test_real_terminal_up_edit_fetch_replay(tmp_path, manager):
    """As a new user in a real terminal: type a command, press Up, change one switch, run it, !fetch the
    result (its command comes back on the prompt line; Enter runs it) and !replay a file."""
    (tmp_path / "cmds.txt").write_text('"fire" -s 2 -S 31\n')
    with shell_in_pty(tmp_path) as (fd, screen):
        screen.expect(b"invoke>", 60)
        os.write(fd, b'"fire" -s 2 -S 11\r')
        screen.expect(b"outputs/000001.11.png", 90)
        screen.expect(b"invoke>", 30)
        time.sleep(0.5)
        os.write(fd, b"\x1b[A")           # Up: the last command comes back
        time.sleep(0.3)
        os.write(fd, b"\x7f2\r")          # Backspace, type 2: -S 12
        screen.expect(b"outputs/000002.12.png", 60)
        screen.expect(b"invoke>", 30)
        os.write(fd, b"!fetch outputs/000002.12.png\r")
        screen.expect(b"fetched:", 30)
        screen.expect(b"invoke>", 30)
        time.sleep(0.3)
        os.write(fd, b"\r")               # the fetched command is on the line: run it
        screen.expect(b"outputs/000003.12.png", 60)
        screen.expect(b"invoke>", 30)
        os.write(fd, b"!replay cmds.txt\r")
        screen.expect(b"replayed cmds.txt: 1 ran, 0 failed", 60)
        screen.expect(b"invoke>", 30)
        os.write(fd, b"q\r")
    out = tmp_path / "outputs"
    assert sorted(p for p in os.listdir(out) if p.endswith(".png")) == [
        "000001.11.png", "000002.12.png", "000003.12.png", "000004.31.png"]
    assert read_text_chunks(str(out / "000003.12.png"))["Dream"] == read_text_chunks(str(out / "000002.12.png"))["Dream"]
    assert b"Traceback" not in screen.text


def test_bfloat16_on_request(tmp_path, manager):
    result = run_cli(["--from_file", "-", "--precision", "bfloat16", "--model", "tiny"], cwd=tmp_path,
                     stdin='"fire" -s 3 -S 1\n"fire" -s 3 -S 1 -I -1 -f 0.5\n!models\n')
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-1] == "3 ran, 0 failed"
