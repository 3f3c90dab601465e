"""Output files: unique prefixes across processes, atomic writes, metadata read as data."""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest
from PIL import Image

from invoke_shell.errors import ImageError
from invoke_shell.outputs.naming import next_prefix
from invoke_shell.outputs.pngio import read_text_chunks, write_png


def _allocate(outdir, n, queue):
    queue.put([next_prefix(outdir) for _ in range(n)])


def test_prefixes_never_collide_across_processes(tmp_path):
    outdir = str(tmp_path / "out")
    queue = multiprocessing.get_context("spawn").Queue()
    procs = [multiprocessing.get_context("spawn").Process(target=_allocate, args=(outdir, 40, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    got = [x for _ in procs for x in queue.get(timeout=60)]
    for p in procs:
        p.join()
    assert len(got) == 120 and len(set(got)) == 120
    assert sorted(got) == [f"{i:06d}" for i in range(1, 121)]


def test_prefix_follows_existing_files(tmp_path):
    (tmp_path / "000041.123.png").write_bytes(b"")
    assert next_prefix(str(tmp_path)) == "000042"
    os.remove(tmp_path / ".next_prefix")
    assert next_prefix(str(tmp_path)) == "000042"  # counter lost: the files decide again
    assert next_prefix(str(tmp_path)) == "000043"


def test_write_png_is_atomic(tmp_path, monkeypatch):
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    path = str(tmp_path / "a.png")
    image = Image.new("RGB", (8, 8), (1, 2, 3))
    write_png(path, image, {"Dream": '"fire" -s 5', "sd-metadata": "{}", "note": "ünïcode ☃"})
    assert read_text_chunks(path) == {"Dream": '"fire" -s 5', "sd-metadata": "{}", "note": "ünïcode ☃"}

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", fail)
    with pytest.raises(KeyboardInterrupt):
        write_png(str(tmp_path / "b.png"), image, {})
    assert sorted(os.listdir(tmp_path)) == ["a.png"]  # no partial file, no temporary left behind


@pytest.mark.parametrize("content,message", [
    (None, "no such file"),
    (b"", "not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "cannot read|not an image"),
])
def test_unreadable_pngs(tmp_path, content, message):
    path = tmp_path / "x.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageError, match=message):
        read_text_chunks(str(path))


def test_fetch_treats_metadata_as_data(tmp_path, shell):
    """A PNG whose Dream chunk holds shell syntax gives a parse error or a quoted prompt, never a command run."""
    evil = tmp_path / "evil.png"
    write_png(str(evil), Image.new("RGB", (8, 8)), {"Dream": '"x" -s 5; rm -rf / `touch pwned`'})
    assert shell.execute(f"!fetch {evil}") is False
    assert "does not parse" in shell.said[-1]
    write_png(str(evil), Image.new("RGB", (8, 8)), {"Dream": '"$(touch pwned)" -s 5 -S 1'})
    assert shell.execute(f"!fetch {evil}") is True
    assert shell.prefill == '"$(touch pwned)" -s 5 -S 1 -C 7.5 -A k_lms'
    assert not os.path.exists("pwned")


def test_fetch_compares_recorded_inputs_only_as_data(tmp_path, shell):
    """The init image an sd-metadata chunk names is hashed only when it is a regular file: a device or a
    malformed entry is reported or skipped, never read."""
    digest = "0" * 64
    meta = {"image": {"prompt": "x", "seed": 1, "steps": 5, "cfg_scale": 7.5, "sampler": "k_lms", "width": 64,
                      "height": 64, "init_img": "/dev/zero", "strength": 0.5, "orig_hash": digest,
                      "init_mask": "gone.png", "mask_hash": "not a sha256"}}
    png = tmp_path / "odd.png"
    write_png(str(png), Image.new("RGB", (8, 8)), {"sd-metadata": json.dumps(meta)})
    start = len(shell.said)
    assert shell.execute(f"!fetch {png}"), shell.said[-1]
    assert [line for line in shell.said[start:] if line.startswith("note:")] == [
        "note: -I/--init_img /dev/zero is not a regular file"]             # the mask's malformed hash: skipped
    assert "-I /dev/zero -f 0.5" in shell.prefill



def test_png_compression_changes_the_file_not_the_pixels(shell):
    """-z/--png_compression (InvokeAI 2.3's): 0 stores the pixels uncompressed, 9 packs them tightest; the
    image and its command are the same, and the command records the level."""
    import numpy as np
    from PIL import Image

    sizes, pixels = {}, {}
    for level in (0, 9):
        assert shell.execute(f'"fire" -s 2 -S 3 -W 64 -H 64 -z {level}'), shell.said[-2:]
        path = shell.previous[-1].path
        sizes[level] = os.path.getsize(path)
        pixels[level] = np.asarray(Image.open(path))
        assert f"-z {level}" in read_text_chunks(path)["Dream"]
    assert sizes[0] > sizes[9]
    assert np.array_equal(pixels[0], pixels[9])
    assert not shell.execute('"fire" -s 2 -z 10')
    assert "-z/--png_compression must be in [0, 9], got 10" in shell.said[-1]
