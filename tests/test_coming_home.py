"""InvokeAI 2.3 habits that work here: bare picture names from the output folder, and unique prefixes of
long switches (tests/test_request.py)."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document


def test_bare_names_are_found_in_the_output_folder(shell, tmp_path, monkeypatch):
    from invoke_shell.command_set import default_commands
    from invoke_shell.completion import ShellCompleter
    from invoke_shell.paths import in_outdir

    monkeypatch.chdir(tmp_path)
    assert shell.execute('"fire" -s 3 -S 42'), shell.said
    path = shell.previous[-1].path
    name = os.path.basename(path)
    assert not os.path.exists(name) and os.path.dirname(path) == shell.outdir
    # what Tab offers after -I is what opens
    completer = ShellCompleter(default_commands(), outdir=lambda: shell.outdir)
    offered = [c.text for c in completer.get_completions(Document(f'"fire" -I {name[:4]}'), CompleteEvent())]
    assert offered == [name[4:]] and os.path.isfile(in_outdir(name, shell.outdir))
    for line in (f'"fire" -s 3 -S 42 -I {name} -f 0.5', f"!fetch {name}", f"!verify {name}",
                 f"!fix {name} -c top 8"):
        before = len(shell.said)
        assert shell.execute(line), shell.said[before:]
        assert not any(s.startswith("error") for s in shell.said[before:]), shell.said[before:]
    assert f"-I {path}" in shell.said[-1], "the PNG records where the picture was found"
    assert np.asarray(Image.open(shell.previous[-1].path)).shape == (72, 64, 3)
    before = len(shell.said)
    assert not shell.execute('"fire" -I nowhere.png')
    assert shell.said[before:] == ["error: -I/--init_img: no such file: nowhere.png"]


def test_an_output_folder_that_cannot_be_written_is_one_line_before_any_work(shell, tmp_path):
    calls = []
    shell.manager.activate("tiny")
    hook = shell.manager.active.txt2img.unet.register_forward_pre_hook(lambda *_: calls.append(1))
    (tmp_path / "file").write_text("x")
    try:
        for outdir, why in ((tmp_path / "file" / "x", "is not a folder"), ("/proc/invoke-shell", "virtual")):
            before = len(shell.said)
            assert not shell.execute(f'"fire" -s 2 -o {outdir}')
            said = shell.said[before:]
            assert len(said) == 1 and said[0].startswith(f"error: -o/--outdir {outdir}: the output folder cannot "
                                                         f"be written ("), said
            assert why in said[0]
    finally:
        hook.remove()
    assert calls == [], "nothing computed"
    assert shell.execute('"fire" -s 2'), "the session goes on"


def test_23_command_spellings(shell, tmp_path):
    shell.execute("!help")
    help_text = shell.said[-1]
    assert "!NN" in help_text and "(also !import)" in help_text and "!dream COMMAND" in help_text
    assert shell.execute('!dream "fire" -s 2 -S 5'), shell.said
    assert shell.previous[-1].seed == 5
    for short in ("!del", "!edit"):  # the same commands as !del_model and !edit_model, so the same answer
        assert shell.execute(f"{short} nothing-here") is False
        said = shell.said[-1]
        shell.execute(f"{short}_model nothing-here")
        assert shell.said[-1] == said
    assert "!dream needs a command" in (shell.execute("!dream"), shell.said[-1])[1]


def _make_23_root(root):
    """An InvokeAI 2.3 root as its installer left it: invokeai.init, configs/models.yaml, embeddings/,
    outputs/ holding a 2.3 PNG."""
    from PIL.PngImagePlugin import PngInfo

    (root / "configs").mkdir(parents=True)
    (root / "embeddings").mkdir()
    (root / "outputs").mkdir()
    (root / "configs" / "models.yaml").write_text(
        "tiny-2.3:\n  description: a model of the old root\n  format: diffusers\n  path: builtin:tiny\n"
        "  default: true\n")
    (root / "invokeai.init").write_text(
        "# InvokeAI initialization file\n--outdir=outputs\n--embedding_path=embeddings\n--xformers\n"
        "--max_loaded_models=1\n--steps=7 --precision=float32\n")
    info = PngInfo()
    info.add_text("Dream", "a cat -s 30 -S 42 -W 512 -H 512 -C 7.5 -A k_lms # model_id=stable-diffusion-1.5")
    Image.new("RGB", (64, 64), (1, 2, 3)).save(root / "outputs" / "000001.42.png", pnginfo=info)


def _launch(args, stdin, cwd, env_extra=None):
    import subprocess
    import sys

    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "invoke_shell", *args, "--from_file", "-"], input=stdin,
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_a_23_root_starts_as_it_is(tmp_path):
    root = tmp_path / "invokeai"
    _make_23_root(root)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = _launch(["--root_dir", str(root)], '!fetch 000001.42.png\n"fire" -S 3\n', elsewhere)
    out = result.stdout
    assert result.returncode == 0, result.stdout + result.stderr
    assert (f"note: {root / 'invokeai.init'}: --xformers (InvokeAI 2.3) means nothing here: PyTorch's own "
            "scaled-dot-product attention is always used; skipped") in out
    assert 'fetched (InvokeAI 2.x): "a cat" -s 30 -S 42 -W 512 -H 512 -C 7.5 -A k_lms' in out, "a bare 2.3 name"
    made = [p for p in os.listdir(root / "outputs") if p.endswith(".png") and p != "000001.42.png"]
    assert made == ["000002.3.png"], "outputs land in the root's outputs/, after 2.3's own numbering"
    assert '"fire" -s 7 -S 3' in out, "the init file's --steps is in force"
    assert (root / ".last_model").read_text().strip() == "tiny-2.3"
    assert not os.listdir(elsewhere), "nothing is written where the shell was started"
    # INVOKEAI_ROOT works the same, and the command line wins over the init file
    result = _launch(["-s", "2"], '"fire" -S 4\n', elsewhere, {"INVOKEAI_ROOT": str(root)})
    assert result.returncode == 0 and '"fire" -s 2 -S 4' in result.stdout, result.stdout + result.stderr


def test_23_launch_spellings(tmp_path):
    result = _launch(["--always_use_cpu", "-F", "--config", "nowhere.yaml"], "", tmp_path)
    assert result.returncode == 2 and "nowhere.yaml" in result.stderr, "--config is --conf"
    result = _launch(["--always_use_cpu", "-F", "--max_loaded_models", "1"], '"fire" -s 2 -S 1\n!models\n', tmp_path)
    assert result.returncode == 0 and "[sd1] float32 (asked)" in result.stdout, "-F is --precision float32"
    result = _launch([], '"fire" -s 2 -S 1\n!models\n', tmp_path)
    assert "[sd1] float32 (asked)" not in result.stdout
    result = _launch(["--web"], "", tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == ("invoke-shell: --web (InvokeAI 2.3) means nothing here: this is the terminal "
                                     "shell; there is no web server; drop it")
    result = _launch(["--root_dir", str(tmp_path / "none")], "", tmp_path)
    assert result.returncode == 2 and "--root_dir" in result.stderr and "no such folder" in result.stderr


def test_diff_says_how_two_pictures_differ(shell, tmp_path):
    assert shell.execute('"fire" -s 3 -S 42 -C 7')
    a = shell.previous[-1].path
    assert shell.execute('"ice [smoke]" -s 4 -S 42 -C 7 --seamless')
    b = shell.previous[-1].path
    assert shell.execute('"fire" -s 3 -S 42 -C 7')
    same = shell.previous[-1].path
    before = len(shell.said)
    assert shell.execute(f"!diff {os.path.basename(a)} {b} --save {tmp_path / 'd.png'}"), shell.said[before:]
    said = shell.said[before:]
    assert said[0].splitlines() == ["commands (A | B):", "  prompt: 'fire' | 'ice [smoke]'", "  -s/--steps: 3 | 4",
                                    "  --seamless: (not set) | on", "  --seamless_axes: (not set) | ('x', 'y')"]
    assert said[1].startswith("pixels: max ") and "of the pixels differ" in said[1]
    written = np.asarray(Image.open(tmp_path / "d.png")).astype(int)
    expected = np.abs(np.asarray(Image.open(a)).astype(int) - np.asarray(Image.open(b)).astype(int)) * 4
    assert np.array_equal(written, np.clip(expected, 0, 255)) and said[2] == f"the difference, 4x: {tmp_path / 'd.png'}"
    before = len(shell.said)
    assert shell.execute(f"!diff {a} {same}")
    assert shell.said[before:] == ["commands: the same", "pixels: identical"]
    assert not shell.execute(f"!diff {a}") and "!diff needs two pictures" in shell.said[-1]


def test_root_prefixes_and_spaced_paths_in_the_init_file(tmp_path):
    from invoke_shell.root import expanded

    root = tmp_path / "invokeai"
    (root / "configs").mkdir(parents=True)
    (root / "invokeai.init").write_text("--outdir pics\n-o pics2\n--conf=configs/models.yaml\n")
    words, notes, found = expanded(["--root_d", str(root)], {})
    assert found == str(root), "argparse's prefix of --root_dir names the root too"
    assert ["--outdir", str(root / "pics"), "-o", str(root / "pics2")] == words[1:5]
    assert f"--conf={root / 'configs' / 'models.yaml'}" in words
