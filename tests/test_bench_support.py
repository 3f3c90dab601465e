"""What the benchmarks (bench/) decided for the product: `--precision auto` on the CPU."""

from __future__ import annotations

import pytest
import torch

from invoke_shell.models import manager as manager_module
from invoke_shell.models.manager import cpu_has_native_bf16, pick_dtype


@pytest.mark.parametrize("native, expected", [(True, torch.bfloat16), (False, torch.float32)])
def test_auto_precision_on_cpu_follows_native_bf16(monkeypatch, native, expected):
    monkeypatch.setattr(manager_module, "cpu_has_native_bf16", lambda: native)
    assert pick_dtype("auto", "cpu") is expected


@pytest.mark.parametrize("device, expected", [("cuda", torch.float16), ("mps", torch.float32)])
def test_auto_precision_elsewhere_ignores_the_cpu(monkeypatch, device, expected):
    monkeypatch.setattr(manager_module, "cpu_has_native_bf16", lambda: True)
    assert pick_dtype("auto", device) is expected


def test_explicit_precision_is_kept(monkeypatch):
    monkeypatch.setattr(manager_module, "cpu_has_native_bf16", lambda: False)
    assert pick_dtype("bfloat16", "cpu") is torch.bfloat16
    assert pick_dtype("float32", "cpu") is torch.float32


def test_native_bf16_probe_matches_the_cpu_flags():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next(line.split(":", 1)[1].split() for line in f if line.startswith("flags"))
    except (OSError, StopIteration):
        pytest.skip("no /proc/cpuinfo flags here")
    assert cpu_has_native_bf16() == ("avx512_bf16" in flags or "amx_bf16" in flags)


def _expected_hash(folder):
    import hashlib

    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(folder)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def test_model_hash_is_remembered_until_a_file_changes(tmp_path, monkeypatch):
    import os

    from invoke_shell.models.manager import LoadedModel
    from invoke_shell.models.registry import ModelEntry

    folder = tmp_path / "model"
    (folder / "unet").mkdir(parents=True)
    (folder / "model_index.json").write_text("{}")
    weights = folder / "unet" / "weights.bin"
    weights.write_bytes(b"\x00\x01" * 1000)
    entry = ModelEntry("m", "", "diffusers", path=str(folder))

    first = LoadedModel(entry, folder, None, None).content_hash()
    assert first == _expected_hash(folder)

    def no_reading(*args, **kwargs):
        raise AssertionError("the files were read again")

    with monkeypatch.context() as m:
        m.setattr(manager_module, "open", no_reading, raising=False)
        assert LoadedModel(entry, folder, None, None).content_hash() == first  # remembered: nothing read

    weights.write_bytes(b"\x02\x03" * 1000)  # same size, new content and modification time
    os.utime(weights, ns=(1, 1))
    changed = LoadedModel(entry, folder, None, None).content_hash()
    assert changed == _expected_hash(folder) != first
