"""The model manager and models.yaml: offline loads, the LRU cache, switching, the model commands."""

from __future__ import annotations

import gc
import os
import weakref

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from invoke_shell.errors import ModelError
from invoke_shell.models.builtin import build_tiny
from invoke_shell.models.manager import ModelManager
from invoke_shell.models.registry import load_registry
from invoke_shell.shell import Shell, interact

HEADER = "# my models\n# keep this comment\n\n"


@pytest.fixture(scope="session")
def tiny_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    for i, name in enumerate(("alpha", "beta", "gamma")):
        build_tiny(root / name, seed=i)
    return root


@pytest.fixture
def yaml_path(tmp_path, tiny_folders):
    path = tmp_path / "models.yaml"
    stanzas = "".join(f"{n}:\n  description: model {n}\n  format: diffusers\n  path: {tiny_folders / n}\n"
                      for n in ("alpha", "beta", "gamma"))
    path.write_text(HEADER + stanzas + "broken:\n  description: points nowhere\n  format: diffusers\n"
                    "  path: nowhere\n")
    return path


@pytest.fixture
def count_loads(monkeypatch):
    import diffusers

    calls = []
    original = diffusers.StableDiffusionPipeline.from_pretrained.__func__

    def counting(cls, *args, **kwargs):
        calls.append(str(args[0]))
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(diffusers.StableDiffusionPipeline, "from_pretrained", classmethod(counting))
    return calls


def test_relative_paths_resolve_against_the_yaml(tmp_path, tiny_folders):
    (tmp_path / "sub").mkdir()
    os.symlink(tiny_folders / "alpha", tmp_path / "sub" / "alpha")
    (tmp_path / "sub" / "m.yaml").write_text("a:\n  format: diffusers\n  path: alpha\n")
    manager = ModelManager(load_registry(tmp_path / "sub" / "m.yaml"), device="cpu")
    assert manager.activate("a").folder == tmp_path / "sub" / "alpha"


def test_cached_switches_read_nothing_from_disk(yaml_path, count_loads):
    manager = ModelManager(load_registry(yaml_path), device="cpu", max_loaded=2)
    manager.activate("alpha")
    manager.activate("beta")
    for _ in range(3):
        manager.activate("alpha")
        manager.activate("beta")
    assert [os.path.basename(p) for p in count_loads] == ["alpha", "beta"]
    assert manager.disk_loads == 2


def test_least_recently_used_is_freed_and_memory_returns(yaml_path, count_loads):
    manager = ModelManager(load_registry(yaml_path), device="cpu", max_loaded=2)
    alpha_unet = weakref.ref(manager.activate("alpha").txt2img.unet)
    manager.activate("beta")
    manager.activate("alpha")              # alpha is now the most recent
    manager.activate("gamma")              # beta goes
    assert manager.cached_names() == ["alpha", "gamma"]
    manager.activate("beta")               # alpha goes
    assert manager.cached_names() == ["gamma", "beta"]
    gc.collect()
    assert alpha_unet() is None            # nothing holds alpha's weights any more
    assert len(count_loads) == 4


def test_max_one_model_and_a_failed_switch_keeps_the_active_one(yaml_path):
    manager = ModelManager(load_registry(yaml_path), device="cpu", max_loaded=1)
    alpha = manager.activate("alpha")
    with pytest.raises(ModelError) as info:
        manager.activate("broken")
    assert "no such folder" in str(info.value) and "\n" not in str(info.value)
    assert manager.active is alpha and manager.cached_names() == ["alpha"]
    manager.activate("beta")
    assert manager.cached_names() == ["beta"]


@pytest.mark.parametrize("yaml_text,message", [
    ("a: [1, 2\n", "malformed YAML at line 2"),
    ("- just\n- a list\n", "expected model names at the top level"),
    ("a: text\n", "model 'a' must be a mapping"),
    ("a:\n  format: onnx\n  path: x\n", "format 'onnx'; supported: diffusers, ckpt"),
    ("a:\n  format: diffusers\n", "needs path:"),
    ("a:\n  description: old ckpt\n", "needs weights:"),
    ("a:\n  format: diffusers\n  path: x\n  width: big\n", "width must be a positive integer"),
])
def test_bad_models_yaml(tmp_path, yaml_text, message):
    path = tmp_path / "models.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ModelError, match=message):
        load_registry(path)


def test_repo_id_without_a_local_copy_says_there_is_no_network(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    path = tmp_path / "models.yaml"
    path.write_text("sd:\n  format: diffusers\n  repo_id: someone/some-model\n")
    manager = ModelManager(load_registry(path), device="cpu")
    with pytest.raises(ModelError, match="not in the local Hugging Face cache and there is no network"):
        manager.activate("sd")


def _shell(yaml_path, tmp_path, **kwargs):
    said = []
    manager = ModelManager(load_registry(yaml_path), device="cpu", **kwargs)
    shell = Shell(manager, outdir=str(tmp_path / "out"), say=said.append, model="alpha")
    shell.said = said
    return shell


def test_switch_and_models_commands(yaml_path, tmp_path):
    shell = _shell(yaml_path, tmp_path)
    assert shell.execute('"fire" -s 2 -S 1')
    assert shell.execute("!switch beta")
    assert shell.said[-2:] == ["loading model beta...", "active model: beta on cpu"]
    assert not shell.execute("!switch broken")
    assert shell.said[-1].startswith("error: model 'broken': no such folder")
    shell.said.clear()
    shell.execute("!models")
    assert [line.split()[:2] for line in shell.said] == [
        ["alpha", "cached"], ["beta", "active"], ["gamma", "not"], ["broken", "not"]]
    assert shell.execute('"fire" -s 2 -S 1')
    assert shell.manager.active.name == "beta"


def test_import_edit_delete_from_a_command_file(yaml_path, tmp_path, tiny_folders):
    shell = _shell(yaml_path, tmp_path)
    shell.execute("!switch alpha")
    tally = shell.run([
        f"!import_model {tiny_folders / 'gamma'} --name gamma2 --description 'a copy' --default",
        "!edit_model gamma2 --description 'a better copy'",
        "!del_model beta",            # no --yes outside the prompt: refused
        "!del_model beta --yes",
        "!del_model alpha --yes",     # the active model: refused
    ])
    assert tally.failed == 2
    text = yaml_path.read_text()
    assert text.startswith(HEADER)
    registry = load_registry(yaml_path)
    assert registry.names() == ("alpha", "gamma", "broken", "gamma2")
    assert registry.default().name == "gamma2"
    entry = registry.get("gamma2")
    assert entry.description == "a better copy" and entry.path == str(tiny_folders / "gamma")
    assert [p for p in os.listdir(tmp_path) if p.endswith(".tmp")] == []
    assert "error: !del_model: 'alpha' is the active model; !switch to another first" in shell.said
    assert shell.manager.is_cached("gamma2")          # the test load stays in the cache


def test_import_asks_through_the_prompt(yaml_path, tmp_path, tiny_folders):
    shell = _shell(yaml_path, tmp_path)
    with create_pipe_input() as inp:
        inp.send_text(f"!import_model {tiny_folders / 'beta'}\n")
        inp.send_text("\x01\x0b" + "fresh\n")     # name: Ctrl-A Ctrl-K clears the suggestion, then type
        inp.send_text("\n")                        # description: keep the default
        inp.send_text("y\n")                       # make it the default
        inp.send_text("!del_model gamma\nn\n")     # asked, answered no
        inp.send_text("!del_model broken\ny\nq\n")
        interact(shell, input=inp, output=DummyOutput())
    registry = load_registry(yaml_path)
    assert registry.names() == ("alpha", "beta", "gamma", "fresh"), shell.said
    assert registry.get("fresh").description == f"imported from {tiny_folders / 'beta'}"
    assert registry.default().name == "fresh"
    assert "nothing deleted" in shell.said


def test_import_without_models_yaml_writes_one(tmp_path, tiny_folders, monkeypatch):
    monkeypatch.chdir(tmp_path)
    manager = ModelManager(load_registry("models.yaml", missing_ok=True), device="cpu")
    said = []
    shell = Shell(manager, outdir="out", say=said.append)
    assert shell.execute(f"!import_model {tiny_folders / 'alpha'} --name mine"), said
    assert load_registry("models.yaml").names() == ("demo", "tiny", "mine")


def test_bad_model_commands(yaml_path, tmp_path):
    shell = _shell(yaml_path, tmp_path)
    for line, message in [
        ("!import_model", "!import_model needs one path"),
        ("!import_model /no/such/place --name x", "no such file or folder: /no/such/place"),
        (f"!import_model {yaml_path}", "not a model file"),
        ("!import_model . --bogus 1", "unknown switch '--bogus'"),
        ("!edit_model nobody --description x", "unknown model 'nobody'"),
        ("!del_model", "!del_model needs a model name"),
    ]:
        assert shell.execute(line) is False
        assert message in shell.said[-1], (line, shell.said[-1])


def test_import_a_folder_of_models(yaml_path, tmp_path, tiny_folders):
    """!import_model DIR lists what it found; at the prompt it asks per model; --all takes every one."""
    shell = _shell(yaml_path, tmp_path)
    shell.execute("!switch alpha")
    with create_pipe_input() as inp:
        inp.send_text(f"!import_model {tiny_folders}\n")
        inp.send_text("y\n" "\n" "\n" "n\n")   # alpha: yes, its name and description kept, not the default
        inp.send_text("n\n" "n\nq\n")           # beta and gamma: no
        interact(shell, input=inp, output=DummyOutput())
    assert f"found 3 models in {tiny_folders}: alpha, beta, gamma" in shell.said
    assert load_registry(yaml_path).names() == ("alpha", "beta", "gamma", "broken", "alpha-2")
    shell.ask = None
    assert shell.execute(f"!import_model {tiny_folders} --all"), shell.said
    assert load_registry(yaml_path).names()[-3:] == ("alpha-3", "beta-2", "gamma-2")
