"""What the benchmarks (bench/) decided for the product: the model hash remembered, not recomputed (the
precision rule they support is tested in test_precision.py)."""

from __future__ import annotations

from invoke_shell.models import manager as manager_module


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
