"""The prompt as a user lives in it: history recall and search, completion in every context, the toolbar."""

from __future__ import annotations

import os
import threading
import time

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from invoke_shell.command_set import default_commands
from invoke_shell.completion import ShellCompleter
from invoke_shell.history import ShellHistory
from invoke_shell.shell import interact

UP = "\x1b[A"


def drive(shell, text, history, first_line=None):
    """Type `text` at the prompt. With `first_line`, type that first and the rest only once it has run and
    the next prompt has loaded its history (as a person would: Up needs the history loaded)."""
    with create_pipe_input() as inp:
        def feed():
            if first_line is not None:
                inp.send_text(first_line)
                deadline = time.monotonic() + 60
                while not shell.said and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(0.5)
            inp.send_text(text)

        feeder = threading.Thread(target=feed)
        feeder.start()
        interact(shell, input=inp, output=DummyOutput(), history_path=str(history))
        feeder.join()


def test_up_arrow_recall_edit_and_history_commands(shell, tmp_path):
    history = tmp_path / "hist"
    drive(shell, first_line='"fire" -s 2 -S 5\n', history=history, text="".join([
        UP + "\x08" + "6\n",          # Up, change the seed, run
        "!history\n",
        "!search S 6\n",
        "!1\n", "\n",                # entry 1 on the prompt line, Enter runs it
        "!99\n",
        "!clear\n", "n\n",
        "q\n",
    ]))
    said = shell.said
    assert said[0].endswith('"fire" -s 2 -S 5 -W 64 -H 64 -C 7.5 -A k_lms')
    assert said[1].endswith('"fire" -s 2 -S 6 -W 64 -H 64 -C 7.5 -A k_lms')
    assert said[2:5] == ['[1] "fire" -s 2 -S 5', '[2] "fire" -s 2 -S 6', "[3] !history"]
    assert said[5] == '[2] "fire" -s 2 -S 6'
    assert said[6].endswith('"fire" -s 2 -S 5 -W 64 -H 64 -C 7.5 -A k_lms')
    assert said[7] == "error: !99: the history has entries 1 to 7"
    assert said[8] == "history kept"
    # the history file holds every line, written as it was typed (it survives a crash)
    assert ShellHistory(str(history)).entries()[:3] == ['"fire" -s 2 -S 5', '"fire" -s 2 -S 6', "!history"]


def test_clear_history(shell, tmp_path):
    history = tmp_path / "hist"
    drive(shell, "!help\n!clear\ny\nq\n", history)
    assert shell.said[-1] == "history cleared"
    assert ShellHistory(str(history)).entries() == ["q"]


def test_history_is_capped(tmp_path):
    path = str(tmp_path / "hist")
    full = ShellHistory(path, limit=10_000)
    for i in range(1100):
        full.append_string(f'"prompt {i}" -s 3')
    capped = ShellHistory(path, limit=1000)
    entries = capped.entries()
    assert len(entries) == 1000 and entries[0] == '"prompt 100" -s 3' and entries[-1] == '"prompt 1099" -s 3'
    assert ShellHistory(path, limit=5000).entries() == entries  # the file itself was trimmed


@pytest.fixture
def files(tmp_path, monkeypatch):
    tmp_path = tmp_path / "work"
    tmp_path.mkdir()
    monkeypatch.chdir(tmp_path)
    for name in ("sketch.png", "photo.jpg", "notes.txt", "cmds.txt", "model.safetensors", "my pics/a b.png"):
        os.makedirs(os.path.dirname(name) or ".", exist_ok=True)
        open(name, "w").close()
    os.makedirs("outputs")
    open("outputs/000001.42.png", "w").close()
    return tmp_path


def complete(text, **kwargs):
    completer = ShellCompleter(default_commands(), model_names=lambda: ("sd15", "tiny", "tinier"),
                               seeds=lambda: [42, 4242, 7], outdir=lambda: "outputs", **kwargs)
    return [(c.text, c.start_position) for c in completer.get_completions(Document(text), CompleteEvent())]


def texts(text):
    return sorted(t for t, _ in complete(text))


def test_completion_contexts(files):
    assert texts('"fire" --st') == ["--steps", "--strength", "--strip"]
    assert "-A" in texts('"fire" -') and "--init_img" in texts('"fire" -')
    assert texts('"fire" -A k_dpm') == ["k_dpm_2", "k_dpm_2_a", "k_dpmpp_2", "k_dpmpp_2m"]  # a synonym too
    assert texts('"fire" --sampler k_e') == ["k_euler", "k_euler_a"]
    assert texts('"fire" --precision ') == ["auto", "bfloat16", "float16", "float32"]
    assert texts('"fire" --precision b') == ["bfloat16"]
    assert texts('"fire" -I ') == sorted(["sketch.png", "photo.jpg", "my pics", "outputs", "000001.42.png"])
    assert texts('"fire" -I sk') == ["etch.png"]
    assert texts('"fire" -I "my pics/a') == [" b.png"]       # a quoted path with spaces
    assert texts("!fetch my pics/") == ["a b.png"]            # a command argument may hold spaces
    assert texts("!fetch 0000") == ["01.42.png"]              # images in the output folder
    assert texts("!replay ") == sorted(["cmds.txt", "notes.txt", "my pics", "outputs"])
    assert texts("!import_model m") == ["odel.safetensors", "y pics"]
    assert texts("!switch ti") == ["tinier", "tiny"]
    assert texts("!edit_model s") == ["sd15"] and texts("!del_model t") == ["tinier", "tiny"]
    assert texts('"fire" -S 4') == ["42", "4242"]
    assert texts("!his") == ["!history"] and "!fetch" in texts("!")
    assert texts('"fire" --fit ') == []


def test_completions_carry_help(files):
    completer = ShellCompleter(default_commands())
    (steps,) = [c for c in completer.get_completions(Document('"x" --ste'), CompleteEvent())]
    assert steps.display_meta_text == "number of sampler steps"


def test_toolbar(shell):
    shell.manager.activate("tiny")
    shell.execute('"fire" -s 2 -S 77')
    assert shell.toolbar() == " model: tiny | device: cpu | precision: float32 (asked) | last seed: 77"


def test_unreadable_history_is_set_aside_and_the_shell_starts(shell, tmp_path):
    history = tmp_path / "hist"
    history.mkdir()                                    # not a file: cannot be read
    drive(shell, '"fire" -s 2 -S 3\nq\n', history)
    assert shell.said[0] == (f"warning: the history {history} could not be read (Is a directory); "
                             f"kept it as {history}.bak")
    assert shell.said[1].endswith('"fire" -s 2 -S 3 -W 64 -H 64 -C 7.5 -A k_lms')
    assert (tmp_path / "hist.bak").is_dir()
    assert ShellHistory(str(history)).entries() == ['"fire" -s 2 -S 3', "q"]


def test_garbage_in_the_history_file_is_survived(shell, tmp_path):
    history = tmp_path / "hist"
    history.write_bytes(b"\xff\xfe\x00garbage\n+\xc3(\n\n# x\n+ok line\n")
    drive(shell, "!history\nq\n", history)
    assert any(line.endswith("ok line") for line in shell.said)
