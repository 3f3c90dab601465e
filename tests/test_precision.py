"""`--precision auto`: float16 on CUDA; on the CPU float32 where bfloat16 is emulated, else the faster of the
two for the model, measured once and remembered. Both CPU branches run here whatever this CPU is: the
suite forces INVOKE_SHELL_CPU_BF16, and the timings are replaced where a test needs a given winner."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invoke_shell.models import precision
from invoke_shell.models.manager import ModelManager
from invoke_shell.models.registry import BUILTIN


def test_auto_on_cuda_is_float16_and_mps_float32():
    assert precision.decide("auto", "cuda") == precision.Pick("float16", "cuda")
    assert precision.decide("auto", "mps").dtype == "float32"


@pytest.mark.parametrize("asked", ["float32", "bfloat16", "float16"])
def test_an_explicit_precision_is_kept(monkeypatch, asked):
    for branch in ("native", "emulated"):
        monkeypatch.setenv("INVOKE_SHELL_CPU_BF16", branch)
        assert precision.decide(asked, "cpu") == precision.Pick(asked, "asked")


def test_auto_on_an_emulating_cpu_is_float32_without_measuring(monkeypatch):
    monkeypatch.setenv("INVOKE_SHELL_CPU_BF16", "emulated")
    assert precision.decide("auto", "cpu") == precision.Pick("float32", "bf16 emulated on this CPU")


def test_auto_on_a_native_bf16_cpu_measures(monkeypatch):
    monkeypatch.setenv("INVOKE_SHELL_CPU_BF16", "native")
    assert precision.decide("auto", "cpu") is None


def test_the_probe_follows_the_cpu_flags_when_not_forced(monkeypatch):
    monkeypatch.delenv("INVOKE_SHELL_CPU_BF16")
    flags = precision.cpu_info().get("flags", "").split()
    if not flags:
        pytest.skip("no /proc/cpuinfo flags here")
    assert precision.cpu_has_native_bf16() == ("avx512_bf16" in flags or "amx_bf16" in flags)


@pytest.mark.parametrize("ratio, dtype", [(0.5, "bfloat16"), (0.95, "bfloat16"), (0.96, "float32"),
                                          (1.0, "float32"), (1.08, "float32"), (9.0, "float32")])
def test_measured_pick_rule(ratio, dtype):
    assert precision.from_times(1.0, ratio).dtype == dtype


def test_the_pick_is_never_more_than_5_percent_slower_than_the_other():
    for ratio in np.linspace(0.2, 5.0, 400):
        float32_s, bfloat16_s = 1.0, float(ratio)
        chosen = bfloat16_s if precision.from_times(float32_s, bfloat16_s).dtype == "bfloat16" else float32_s
        assert chosen <= 1.05 * min(float32_s, bfloat16_s)


def _fake_timer(monkeypatch, times: dict, calls: list):
    def timed(unet, dtype, side, runs=2):
        calls.append((str(dtype), side))
        assert next(unet.parameters()).dtype == dtype  # the copy really is in the timed type
        return times[str(dtype).replace("torch.", "")]

    monkeypatch.setattr(precision, "time_unet", timed)


def _image(model, line="\"a red star\" -s 3 -S 5 -W 64 -H 64"):
    from invoke_shell.engine.generate import prepare, run
    from invoke_shell.request import parse

    return np.asarray(run(prepare(parse(line), model), model))


def test_bfloat16_wins_is_picked_remembered_and_equals_an_asked_bfloat16(monkeypatch):
    monkeypatch.setenv("INVOKE_SHELL_CPU_BF16", "native")
    calls = []
    _fake_timer(monkeypatch, {"float32": 1.0, "bfloat16": 0.5}, calls)
    manager = ModelManager(BUILTIN, device="cpu", precision="auto")
    model = manager.activate("tiny")
    assert model.pick == precision.Pick("bfloat16", "measured: bf16 2.00x faster")
    assert manager.measurements == 1 and [c[0] for c in calls] == ["torch.float32", "torch.bfloat16"]
    assert model.txt2img.unet.dtype == torch.bfloat16 and model.txt2img.text_encoder.dtype == torch.bfloat16
    # loaded in float32 and cast after the measurement: the same pixels as a model loaded in bfloat16
    asked = ModelManager(BUILTIN, device="cpu", precision="bfloat16").activate("tiny")
    assert np.array_equal(_image(model), _image(asked))
    # a new session on the same CPU and files remembers the pick: nothing is timed again
    calls.clear()
    again = ModelManager(BUILTIN, device="cpu", precision="auto")
    assert again.activate("tiny").pick == model.pick and again.measurements == 0 and calls == []


def test_float32_wins_when_bfloat16_is_not_5_percent_faster(monkeypatch, tmp_path):
    monkeypatch.setenv("INVOKE_SHELL_CACHE", str(tmp_path / "cache"))  # nothing remembered from other tests
    monkeypatch.setenv("INVOKE_SHELL_CPU_BF16", "native")
    _fake_timer(monkeypatch, {"float32": 1.0, "bfloat16": 0.97}, [])
    manager = ModelManager(BUILTIN, device="cpu", precision="auto")
    model = manager.activate("tiny")
    assert model.pick == precision.Pick("float32", "measured: bf16 only 1.03x faster")
    assert model.txt2img.unet.dtype == torch.float32 and manager.measurements == 1


def test_a_real_measurement_on_this_cpu_picks_and_remembers(monkeypatch, tmp_path):
    monkeypatch.setenv("INVOKE_SHELL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("INVOKE_SHELL_CPU_BF16", "native")
    manager = ModelManager(BUILTIN, device="cpu", precision="auto")
    model = manager.activate("tiny")
    assert model.pick.dtype in ("float32", "bfloat16") and model.pick.why.startswith("measured: bf16 ")
    assert model.txt2img.unet.dtype == getattr(torch, model.pick.dtype)
    records = list((tmp_path / "cache" / "precision").glob("*.json"))
    assert len(records) == 1 and precision.remembered(records[0]) == model.pick


def test_a_changed_model_file_is_measured_again(monkeypatch, tmp_path):
    import os

    monkeypatch.setenv("INVOKE_SHELL_CPU_BF16", "native")
    files = [tmp_path / "unet.bin"]
    files[0].write_bytes(b"1")
    first = precision.record_path(files, tmp_path)
    os.utime(files[0], ns=(1, 1))
    assert precision.record_path(files, tmp_path) != first


def test_toolbar_and_models_say_what_was_picked_and_why(monkeypatch, tmp_path):
    from invoke_shell.shell import Shell

    monkeypatch.setenv("INVOKE_SHELL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("INVOKE_SHELL_CPU_BF16", "native")
    _fake_timer(monkeypatch, {"float32": 1.0, "bfloat16": 0.6}, [])
    said = []
    shell = Shell(ModelManager(BUILTIN, device="cpu", precision="auto"), outdir=str(tmp_path / "out"),
                  say=said.append, model="tiny")
    shell.model()
    assert "precision: bfloat16 (measured: bf16 1.67x faster)" in shell.toolbar()
    shell.execute("!models")
    assert any(line.startswith("tiny ") and "bfloat16 (measured: bf16 1.67x faster)" in line for line in said)


def test_emulated_cpu_auto_is_float32_in_the_toolbar(monkeypatch, tmp_path):
    from invoke_shell.shell import Shell

    monkeypatch.setenv("INVOKE_SHELL_CPU_BF16", "emulated")
    shell = Shell(ModelManager(BUILTIN, device="cpu", precision="auto"), outdir=str(tmp_path / "out"),
                  say=lambda line: None, model="tiny")
    shell.model()
    assert "precision: float32 (bf16 emulated on this CPU)" in shell.toolbar()
    assert shell.manager.measurements == 0
