"""Shared fixtures. Every test runs with HOME and the cache redirected into temporary folders, and
nothing touches the network (HF_HUB_OFFLINE is set before diffusers is imported)."""

from __future__ import annotations

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
# The tiny test models gain nothing from threads, and on a busy 2-core machine OpenMP threads waiting
# on each other make every op ~100x slower; subprocesses inherit this too.
os.environ["OMP_NUM_THREADS"] = "1"
# `--precision auto` measures float32 against bfloat16 on a CPU with bfloat16 instructions (an Intel Xeon with
# AMX) and takes float32 without measuring elsewhere (an AVX2-only EPYC). The suite runs the second branch on
# either family, so that auto means float32 everywhere; test_precision.py forces each branch in turn.
os.environ["INVOKE_SHELL_CPU_BF16"] = "emulated"


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("cache")
    os.environ["INVOKE_SHELL_CACHE"] = str(path)
    return path


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch, cache_dir):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("INVOKE_SHELL_CACHE", str(cache_dir))
    return home


@pytest.fixture(scope="session")
def manager(cache_dir):
    """One ModelManager with the built-in tiny model loaded, shared by the whole session."""
    from invoke_shell.models.manager import ModelManager
    from invoke_shell.models.registry import BUILTIN

    mgr = ModelManager(BUILTIN, device="cpu", precision="float32")
    mgr.activate("tiny")
    return mgr


@pytest.fixture
def model(manager):
    return manager.active


@pytest.fixture
def shell(manager, tmp_path):
    """A Shell on the shared model that writes into a temporary outdir and records what it says."""
    from recording import recording_shell

    return recording_shell(manager, tmp_path / "outputs", "tiny")


@pytest.fixture(scope="session")
def demo_model(cache_dir):
    """The trained built-in model shipped in the package, loaded once."""
    from invoke_shell.models.manager import ModelManager
    from invoke_shell.models.registry import ModelEntry, Registry

    registry = Registry((ModelEntry("demo", "", "diffusers", path="builtin:demo", default=True),), None)
    return ModelManager(registry, device="cpu", precision="float32").activate("demo")
