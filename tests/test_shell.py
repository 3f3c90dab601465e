"""The shell as a user drives it: the REPL through prompt_toolkit's pipe input, back-references,
!fetch, !replay, errors that leave the shell running."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from invoke_shell.outputs.pngio import read_text_chunks
from invoke_shell.shell import interact


def drive(shell, text: str, history=None):
    with create_pipe_input() as inp:
        inp.send_text(text)
        interact(shell, input=inp, output=DummyOutput(), history_path=history)


def images(outdir):
    return sorted(p for p in os.listdir(outdir) if p.endswith(".png"))


def test_repl_session(shell, tmp_path):
    out = shell.outdir
    drive(shell, "".join([
        '"fire" -s 3 -S 5 -W 64 -H 64\n',
        '"fire" -s 0\n',                       # an error: one line, the shell goes on
        "!fetch " + os.path.join(out, "000001.5.png") + "\n",
        "\n",                                  # Enter on the prefilled line runs the fetched command
        '"half typed\x03',                     # Ctrl-C clears the line
        '"fire" -s 4 -S -1 -I -1 -f 0.5\n',    # back-references to the previous image
        "!nonsense\n",
        "q\n",
        '"never run" -s 2\n',
    ]), history=str(tmp_path / "hist"))
    said = shell.said
    assert images(out) == ["000001.5.png", "000002.5.png", "000003.5.png"]
    assert said[0] == f'{out}/000001.5.png: "fire" -s 3 -S 5 -W 64 -H 64 -C 7.5 -A k_lms'
    assert said[1] == "error: -s/--steps must be in [1, 1000], got 0"
    assert said[2] == 'fetched: "fire" -s 3 -S 5 -W 64 -H 64 -C 7.5 -A k_lms'  # made in this session's float32
    assert said[3].startswith("made with: float32 on cpu (noise on cpu), torch ")
    assert said[4] == f'{out}/000002.5.png: "fire" -s 3 -S 5 -W 64 -H 64 -C 7.5 -A k_lms'
    assert said[5] == "img2img: strength 0.50 x 4 steps -> 2 of 4 steps from the init image"
    assert said[6] == f'{out}/000003.5.png: "fire" -s 4 -S 5 -W 64 -H 64 -C 7.5 -A k_lms -I {out}/000002.5.png -f 0.5'
    assert said[7] == "error: unknown command '!nonsense'; type !help for the list"
    assert len(said) == 8
    a, b = (np.asarray(Image.open(os.path.join(out, n))) for n in ("000001.5.png", "000002.5.png"))
    assert np.array_equal(a, b)  # the fetched command reproduced its image bit for bit
    history = (tmp_path / "hist").read_text()
    assert '"fire" -s 0' in history and "!nonsense" in history


def test_ctrl_d_leaves(shell):
    drive(shell, '"fire" -s 2 -S 1\n\x04"never" -s 2\n')
    assert len(images(shell.outdir)) == 1


def test_metadata_of_an_img2img_image(shell):
    shell.execute('"fire" -s 3 -S 9')
    first = shell.previous[0].path
    assert shell.execute('"fire [smoke]" -s 10 -S 9 -I -1 -f 0.7 -C 6')
    chunks = read_text_chunks(shell.previous[0].path)
    assert chunks["Dream"] == f'"fire [smoke]" -s 10 -S 9 -W 64 -H 64 -C 6.0 -A k_lms -I {first} -f 0.7'
    meta = json.loads(chunks["sd-metadata"])
    assert meta["model_id"] == "tiny" and len(meta["model_hash"]) == 64
    image = meta["image"]
    assert image["type"] == "img2img" and image["init_img"] == first and image["strength"] == 0.7
    assert image["steps"] == 10 and image["steps_run"] == 7 and image["seed"] == 9
    assert image["prompt"] == [{"prompt": "fire [smoke]", "weight": 1.0}]
    assert image["noise_device"] == "cpu" and len(image["orig_hash"]) == 64
    log = open(os.path.join(shell.outdir, "invoke_log.txt")).read().splitlines()
    assert log[-1] == f"{shell.previous[0].path}: {chunks['Dream']}"


def test_random_seed_is_recorded_and_reproduces(shell):
    shell.execute('"fire" -s 3')
    first = shell.previous[0]
    command = read_text_chunks(first.path)["Dream"]
    assert f"-S {first.seed}" in command
    shell.execute(command)
    again = shell.previous[0]
    assert again.seed == first.seed
    assert np.array_equal(np.asarray(Image.open(first.path)), np.asarray(Image.open(again.path)))


@pytest.mark.parametrize("line,message", [
    ('"fire" -S -1', "-S/--seed -1: there is no previous image in this session yet"),
    ('"fire" -I -1', "-I/--init_img -1: there is no previous image in this session yet"),
    ("!fetch", "!fetch needs a PNG file: !fetch FILE"),
    ("!fetch nowhere.png", "no such file: nowhere.png"),
    ("!replay nowhere.txt", "no such command file: nowhere.txt"),
    ("!switch nothing", "unknown model 'nothing'; known models: demo, tiny"),
])
def test_errors_are_one_line_and_the_shell_goes_on(shell, line, message):
    assert shell.execute(line) is False
    assert shell.said == [f"error: {message}"]
    assert shell.execute('"fire" -s 2 -S 3') is True


def test_back_reference_beyond_the_previous_command(shell):
    shell.execute('"fire" -s 2 -S 3')
    assert shell.execute('"fire" -s 2 -S -2') is False
    assert shell.said[-1] == "error: -S/--seed -2: the previous command made 1 image(s)"


def test_unexpected_errors_are_one_line_and_logged(shell, monkeypatch, caplog):
    from invoke_shell.engine import generate

    def boom(jobs, model, **callbacks):
        raise RuntimeError("the kernel melted\nsecond line")

    monkeypatch.setattr(generate, "run_batch", boom)
    shell.log_path = "outputs/invoke_shell.log"
    assert shell.execute('"fire" -s 2 -S 3') is False
    assert shell.said == ["unexpected error: RuntimeError: the kernel melted (traceback in outputs/invoke_shell.log)"]
    assert "Traceback" in caplog.text or caplog.records[-1].exc_info


def test_ctrl_c_during_generation_keeps_the_model(shell, model):
    """A KeyboardInterrupt raised inside the UNet (as SIGINT would) cancels the job; nothing is saved."""
    calls = []

    def interrupt_at_third_step(module, args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt

    handle = model.txt2img.unet.register_forward_pre_hook(interrupt_at_third_step)
    try:
        assert shell.execute('"fire" -s 10 -S 3') is False
    finally:
        handle.remove()
    assert shell.said == ["cancelled"] and len(calls) == 3
    assert not os.path.exists(shell.outdir) or images(shell.outdir) == []
    assert shell.manager.active is model
    assert shell.execute('"fire" -s 2 -S 3') is True


def test_replay_runs_a_file_through_the_same_loop(shell, tmp_path):
    cmds = tmp_path / "cmds.txt"
    cmds.write_text('# a comment\n\n"fire" -s 2 -S 1\n// another comment\n"fire" -s 0\n"fire" -s 2 -S -1 -C 3\n')
    assert shell.execute(f"!replay {cmds}") is False   # one line failed
    said = shell.said
    assert said[0] == f'# {cmds}:3  "fire" -s 2 -S 1'
    assert said[2] == f'# {cmds}:5  "fire" -s 0'
    assert said[3].startswith("error: -s/--steps")
    assert said[4] == f'# {cmds}:6  "fire" -s 2 -S -1 -C 3'
    assert said[5].endswith('"fire" -s 2 -S 1 -W 64 -H 64 -C 3.0 -A k_lms')
    assert said[6] == f"replayed {cmds}: 3 ran, 1 failed"
    assert len(images(shell.outdir)) == 2


def test_q_in_a_file_ends_the_file_not_the_session(shell, tmp_path):
    cmds = tmp_path / "cmds.txt"
    cmds.write_text('"fire" -s 2 -S 1\nq\n"fire" -s 2 -S 2\n')
    assert shell.execute(f"!replay {cmds}") is True
    assert shell.said[-1] == f"replayed {cmds}: 1 ran, 0 failed"
    assert len(images(shell.outdir)) == 1
    assert shell.execute('"fire" -s 2 -S 3')  # the session goes on


def test_help_lists_every_switch_and_command(shell):
    from invoke_shell.switches import SWITCHES

    shell.execute("!help")
    text = "\n".join(shell.said)
    for sw in SWITCHES:
        assert all(s in text for s in sw.spellings)
    for cmd in shell.commands.unique():
        assert cmd.usage in text
