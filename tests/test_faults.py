"""Faults (issue 9): Ctrl-C at each phase of a generation and kill -9 while an image is written, in a real
pseudo-terminal; two shells and a --from_file run writing one output folder at once; running out of memory;
a damaged history file.

The pseudo-terminal and subprocess shells import `stalls` (written below) before starting: it makes a
generation stop at a named phase (text encoding, step N, decoding, saving) and say so on stderr, so that the
signal arrives exactly there. The signal itself is real: Ctrl-C typed into the terminal, or SIGKILL."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from PIL import Image
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from invoke_shell.history import ShellHistory
from invoke_shell.outputs.pngio import read_text_chunks
from invoke_shell.request import parse, to_command
from invoke_shell.shell import interact
from test_cli import Screen

STALLS = '''
"""Test hooks: `phase.txt` in the current folder names where the next generation stops: encode, step N,
decode or save (which writes half the PNG first). With $STALL_BARRIER set, the first text encoding
waits until that file exists, after creating <barrier>.<pid>.ready."""
import io, os, sys, time

import diffusers, transformers
from PIL import Image

_calls = [0]
_barrier = os.environ.get("STALL_BARRIER")


def _stall(phase):
    try:
        with open("phase.txt") as f:
            if f.read().strip() != phase:
                return
    except FileNotFoundError:
        return
    os.unlink("phase.txt")
    sys.stderr.write(f"<<stalled in {phase}>>\\r\\n")
    sys.stderr.flush()
    time.sleep(300)


def _wrap(cls, name, before):
    original = getattr(cls, name)

    def wrapper(self, *args, **kwargs):
        before()
        return original(self, *args, **kwargs)

    setattr(cls, name, wrapper)


def _encode():
    global _barrier
    if _barrier:
        open(f"{_barrier}.{os.getpid()}.ready", "w").close()
        while not os.path.exists(_barrier):
            time.sleep(0.02)
        _barrier = None
    _calls[0] = 0
    _stall("encode")


def _step():
    _calls[0] += 1
    if os.path.exists("phase.txt") and open("phase.txt").read() in ("fail", "oom"):
        import torch

        failure = open("phase.txt").read()
        os.unlink("phase.txt")
        if failure == "oom":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity")
        raise RuntimeError("the kernel melted\\nsecond line")
    _stall(f"step {_calls[0]}")


_wrap(transformers.CLIPTextModel, "forward", _encode)
_wrap(diffusers.UNet2DConditionModel, "forward", _step)
_wrap(diffusers.AutoencoderKL, "decode", lambda: _stall("decode"))
_save = Image.Image.save


def _save_slowly(self, fp, format=None, **params):
    if not isinstance(fp, (str, os.PathLike)) and os.path.exists("phase.txt") and open("phase.txt").read() == "save":
        data = io.BytesIO()
        _save(self, data, format=format, **params)
        fp.write(data.getvalue()[: len(data.getvalue()) // 2])
        fp.flush()
        _stall("save")
    return _save(self, fp, format=format, **params)


Image.Image.save = _save_slowly
'''


@pytest.fixture
def launch(tmp_path, manager):
    """The argv that starts `invoke-shell --model tiny ARGS` with the stalls loaded (`manager` has built
    the tiny model in the shared cache first)."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "stalls.py").write_text(textwrap.dedent(STALLS))
    code = (f"import sys; sys.path.insert(0, {str(hooks)!r}); import stalls; "
            "from invoke_shell.__main__ import main; sys.exit(main())")
    return lambda *args: [sys.executable, "-c", code, "--model", "tiny", *args]


def start_in_pty(argv, cwd, env=None):
    pid, fd = pty.fork()
    if pid == 0:  # the child: the shell
        os.chdir(cwd)
        os.execvpe(argv[0], argv, dict(os.environ, PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm", **(env or {})))
    return pid, fd


def pngs(folder) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.endswith(".png"))


def check_outputs_are_whole(outdir) -> list[str]:
    """Every PNG under its final name is complete and carries its command; the log has one parseable line
    per PNG, naming it with that command. Returns the log lines."""
    log = (outdir / "invoke_log.txt").read_text(encoding="utf-8").splitlines()
    logged = {os.path.basename(path): command for path, command in (line.split(": ", 1) for line in log)}
    assert len(logged) == len(log) == len(pngs(outdir))
    for name in pngs(outdir):
        with Image.open(outdir / name) as im:
            im.load()  # raises on a truncated file
        command = read_text_chunks(str(outdir / name))["Dream"]
        assert to_command(parse(command)) == command
        assert logged[name] == command
    return log


def test_ctrl_c_at_each_phase_then_kill_9_while_writing(tmp_path, launch, shell):
    """Ctrl-C typed while the text is encoded, at the first, a middle and the last step, while decoding and
    while the PNG is half written: each time `cancelled` and the prompt within seconds, nothing under a
    final name, the model still loaded. Then SIGKILL while a PNG is half written: no truncated PNG under
    its name, the log and history parse, and the next start works (and clears the dead shell's partial file)."""
    outdir = tmp_path / "outputs"
    pid, fd = start_in_pty(launch(), tmp_path)
    screen = Screen(fd)
    try:
        screen.expect(b"invoke>", 90)
        os.write(fd, b'"fire" -s 4 -S 1\r')
        screen.expect(b"outputs/000001.1.png", 90)
        screen.expect(b"invoke>", 30)
        for phase in ("encode", "step 1", "step 2", "step 4", "decode", "save"):
            (tmp_path / "phase.txt").write_text(phase)
            os.write(fd, b'"fire" -s 4 -S 2\r')
            screen.expect(f"<<stalled in {phase}>>".encode(), 60)
            typed = time.monotonic()
            os.write(fd, b"\x03")
            screen.expect(b"cancelled", 30)
            screen.expect(b"invoke>", 30)
            assert time.monotonic() - typed < 10, phase  # the stall would have slept 300 s
            assert os.listdir(outdir) == [n for n in os.listdir(outdir) if not n.endswith(".tmp")], phase
            assert pngs(outdir) == ["000001.1.png"], phase
        os.write(fd, b'"fire" -s 4 -S 2\r')
        screen.expect(b".2.png: ", 60)
        screen.expect(b"invoke>", 30)
        os.write(fd, b"!models\r")
        screen.expect(b"tiny                 active", 30)
        screen.expect(b"invoke>", 30)
        # the diagnostic log: one line on the screen, the traceback (and library warnings) in the log
        (tmp_path / "phase.txt").write_text("fail")
        os.write(fd, b'"fire" -s 4 -S 2\r')
        screen.expect(b"unexpected error: RuntimeError: the kernel melted (traceback in outputs/invoke_shell.log)\r\n",
                      30)
        screen.expect(b"invoke>", 30)
        (tmp_path / "phase.txt").write_text("oom")
        os.write(fd, b'"fire" -s 4 -S 2\r')
        screen.expect(b"error: out of memory (tried to allocate 20.00 GiB): try a smaller -W/-H, fewer images with -n, "
                      b"or start invoke-shell with --free_gpu_mem (traceback in outputs/invoke_shell.log)\r\n", 30)
        screen.expect(b"invoke>", 30)
        Image.new("1", (12000, 8000)).save(tmp_path / "big.png")  # 96 MP: over Pillow's warning limit
        os.write(fd, b"!fetch big.png\r")
        screen.expect(b"error: big.png carries no generation metadata", 60)
        screen.expect(b"invoke>", 30)
        (tmp_path / "phase.txt").write_text("save")
        os.write(fd, b'"fire" -s 4 -S 9\r')
        screen.expect(b"<<stalled in save>>", 60)
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert b"Traceback" not in screen.text and b"Warning" not in screen.text
    log = (outdir / "invoke_shell.log").read_text()
    for logged in ("Traceback", "RuntimeError: the kernel melted", "OutOfMemoryError: CUDA out of memory",
                   "DecompressionBombWarning"):
        assert logged in log
    assert screen.text.count(b"waiting for model") <= 1  # loaded once, kept through every Ctrl-C
    made = pngs(outdir)
    assert len(made) == 2 and not any(n.endswith(".9.png") for n in made)
    partial = [n for n in os.listdir(outdir) if n.endswith(".tmp")]
    assert len(partial) == 1 and partial[0].startswith(".") and ".9.png." in partial[0]
    with pytest.raises(OSError):  # what the killed shell was writing is a truncated PNG, under a hidden name
        Image.open(outdir / partial[0]).load()
    check_outputs_are_whole(outdir)
    history = ShellHistory(str(outdir / ".invoke_history"))
    assert history.entries()[-2:] == ["!fetch big.png", '"fire" -s 4 -S 9'] and history.problem is None

    # the next start, on the same folder and history: no warning, Up-arrow history intact, a new image
    hour_ago = time.time() - 3600
    os.utime(outdir / partial[0], (hour_ago, hour_ago))
    shell.outdir = str(outdir)
    with create_pipe_input() as inp:
        inp.send_text('"fire" -s 2 -S 3\n!history 1\nq\n')
        interact(shell, input=inp, output=DummyOutput(), history_path=str(outdir / ".invoke_history"))
    assert not any(s.startswith(("warning", "error", "unexpected")) for s in shell.said), shell.said
    assert shell.said[-1] == f"[{len(history.entries()) + 2}] !history 1"
    assert len(pngs(outdir)) == 3 and not [n for n in os.listdir(outdir) if n.endswith(".tmp")]
    check_outputs_are_whole(outdir)


def test_two_shells_and_a_from_file_run_share_one_outdir(tmp_path, launch):
    """An interactive shell (in a terminal, running !replay), a shell reading its standard input and a
    --from_file run make 20 images each into one folder at once: 60 distinct files, none overwritten, and
    the log has every line."""
    line = '"fire" -s 2 -S 5\n'
    (tmp_path / "cmds.txt").write_text(line * 20)
    barrier = tmp_path / "go"
    env = dict(os.environ, STALL_BARRIER=str(barrier))
    pid, fd = start_in_pty(launch(), tmp_path, env={"STALL_BARRIER": str(barrier)})
    with open(tmp_path / "cmds.txt") as commands:  # a shell reading its standard input (not a terminal)
        runs = [subprocess.Popen(launch(), cwd=tmp_path, stdin=commands, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=env),
                subprocess.Popen(launch("--from_file", "cmds.txt"), cwd=tmp_path, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)]
    screen = Screen(fd)
    try:
        screen.expect(b"invoke>", 90)
        os.write(fd, b"!replay cmds.txt\r")
        deadline = time.monotonic() + 90
        while len([n for n in os.listdir(tmp_path) if n.endswith(".ready")]) < 3:  # all three at the start line
            assert time.monotonic() < deadline, "the three shells did not all reach their first image"
            time.sleep(0.05)
        barrier.touch()
        screen.expect(b"replayed cmds.txt: 20 ran, 0 failed", 120)
        screen.expect(b"invoke>", 30)
        os.write(fd, b"q\r")
        outs = [run.communicate(timeout=120) for run in runs]
        _, status = os.waitpid(pid, 0)
    finally:
        for run in runs:
            run.kill()
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert [run.returncode for run in runs] == [0, 0], outs
    said = [l.split(": ", 1)[0] for out, _ in outs for l in out.splitlines() if l.startswith("outputs/")]
    said += [l.split(": ", 1)[0] for l in screen.text.decode(errors="replace").replace("\r", "").splitlines()
             if l.startswith("outputs/")]
    assert len(said) == len(set(said)) == 60  # each shell reported 20 paths, all different
    log = check_outputs_are_whole(tmp_path / "outputs")
    assert sorted("outputs/" + l.split(": ", 1)[0].split("/")[-1] for l in log) == sorted(said)
    assert len(pngs(tmp_path / "outputs")) == 60
    assert "Traceback" not in "".join(out + err for out, err in outs)


@pytest.mark.parametrize("error,detail", [
    (lambda torch: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total "
                                          "capacity of 79.15 GiB of which 1.2 GiB is free."),
     " (tried to allocate 20.00 GiB)"),
    (lambda torch: RuntimeError("[enforce fail at alloc_cpu.cpp:116] data. DefaultCPUAllocator: not enough memory: "
                                "you tried to allocate 107374182400 bytes."),
     " (tried to allocate 107374182400 bytes)"),
    (lambda torch: MemoryError(), ""),
], ids=["cuda", "cpu-allocator", "MemoryError"])
def test_out_of_memory_is_one_line_with_what_to_try(shell, model, tmp_path, caplog, error, detail):
    """Out of memory inside the UNet (simulated): one line that says what to try, the traceback in the log,
    nothing written, and the next command runs on the same model."""
    import torch

    def fail(module, args):
        raise error(torch)

    shell.log_path = "outputs/invoke_shell.log"
    handle = model.txt2img.unet.register_forward_pre_hook(fail)
    try:
        assert shell.execute('"fire" -s 4 -S 3 -n 2') is False
    finally:
        handle.remove()
    assert shell.said == [f"error: out of memory{detail}: try a smaller -W/-H, fewer images with -n, or start "
                          "invoke-shell with --free_gpu_mem (traceback in outputs/invoke_shell.log)"]
    assert any(r.exc_info and r.getMessage().startswith("out of memory running") for r in caplog.records)
    assert not os.path.exists(shell.outdir)
    assert shell.manager.active is model
    assert shell.execute('"fire" -s 2 -S 3')


def test_a_damaged_history_is_kept_as_a_backup_and_said_once(shell, tmp_path):
    """A history with bytes that are not UTF-8 and lines that are not history: the shell starts, says so
    once, keeps the file as .bak, reads the entries that are whole, and the next start is silent."""
    path = tmp_path / "history"
    damaged = (b"\n# 2026-01-01\n+\"fire\" -s 2 -S 5\n\x00\x01garbage\xff\xfe\n\n# 2026-01-02\n+!models\n"
               b"\xc3(broken\n")
    path.write_bytes(damaged)
    for run in range(2):
        shell.said.clear()
        with create_pipe_input() as inp:
            inp.send_text("!history\nq\n")
            interact(shell, input=inp, output=DummyOutput(), history_path=str(path))
        warnings = [s for s in shell.said if s.startswith("warning")]
        if run == 0:
            assert warnings == [f"warning: the history {path} had 2 damaged line(s); kept a copy as {path}.bak "
                                "and read 2 entries from it"]
        else:
            assert warnings == []
        assert shell.said[len(warnings):len(warnings) + 2] == ['[1] "fire" -s 2 -S 5', "[2] !models"]
    assert (tmp_path / "history.bak").read_bytes() == damaged
    assert ShellHistory(str(path)).entries()[:2] == ['"fire" -s 2 -S 5', "!models"]
