"""The pictures in the README and docs/ are made by one script; rerunning it gives the same bytes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_doc_pictures_regenerate_bit_for_bit(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_doc_pictures.py"), "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.png"))
    shipped = sorted(p.relative_to(ROOT / "docs" / "images") for p in (ROOT / "docs" / "images").rglob("*.png"))
    assert made == shipped and len(made) == 17
    for name in made:
        assert (tmp_path / name).read_bytes() == (ROOT / "docs" / "images" / name).read_bytes(), name
    # every picture the docs show exists
    for page in ("README.md", "docs/img2img.md", "docs/inpainting.md"):
        text = (ROOT / page).read_text()
        for line in text.split("("):
            if line.startswith(("images/", "docs/images/")):
                assert (ROOT / ("docs/" if line.startswith("images/") else "") / line.split(")")[0]).exists(), line
