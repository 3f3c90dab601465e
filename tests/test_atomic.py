"""write_atomic: the one way files are replaced (images, models.yaml, the history, counters, caches)."""

from __future__ import annotations

import os
import stat

import pytest

from invoke_shell.atomic import write_atomic


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    tmp_path = tmp_path / "folder"
    tmp_path.mkdir()
    target = tmp_path / "models.yaml"
    target.write_text("old\n")

    def half_then_fail(f):
        f.write(b"new and incomp")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        write_atomic(target, half_then_fail)
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["models.yaml"]


def test_text_bytes_and_writer_functions(tmp_path):
    tmp_path = tmp_path / "folder"
    tmp_path.mkdir()
    target = tmp_path / "f"
    write_atomic(target, "é\n")
    assert target.read_bytes() == "é\n".encode()
    write_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    write_atomic(target, lambda f: f.write(b"from a function"))
    assert target.read_bytes() == b"from a function"
    assert os.listdir(tmp_path) == ["f"]


def test_keep_mode_carries_the_permissions_over(tmp_path):
    target = tmp_path / ".invoke_history"
    target.write_text("x")
    os.chmod(target, 0o600)
    write_atomic(target, "y", keep_mode=True)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600 and target.read_text() == "y"
