"""The house stays readable: no import loops inside invoke_shell, the rooms import only downwards (engine and
models never the terminal; parsing never torch, diffusers, compel or transformers, lazily or not; outputs
never the engine), no module over 400 lines and no function over 8 parameters. Read with `ast` from the
source (invoke_shell/architecture.py); the last test shows the checks failing on a package that breaks them."""

from __future__ import annotations

import textwrap
from pathlib import Path

from invoke_shell import architecture as arch

ROOT = Path(arch.__file__).resolve().parent


def test_no_import_loops():
    assert arch.import_loops(ROOT) == []


def test_the_rooms_import_only_what_they_may():
    assert arch.forbidden_imports(ROOT, arch.house_rules("invoke_shell")) == []


def test_small_modules_and_narrow_signatures():
    assert arch.long_modules(ROOT) == []
    assert arch.wide_functions(ROOT) == []


def test_the_rules_name_real_modules():
    modules = {arch.module_name(ROOT, p) for p in ROOT.rglob("*.py")}
    for prefix, _ in arch.house_rules("invoke_shell"):
        assert any(m == prefix or m.startswith(prefix + ".") for m in modules), prefix


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").touch()
        path.write_text(textwrap.dedent(text))
    return root


def test_the_checks_fail_on_a_package_that_breaks_them(tmp_path):
    root = _package(tmp_path, {
        "shell.py": "from . import commands\n",
        "commands.py": "def quit():\n    from .shell import Quit\n",           # a lazy import closes a loop
        "engine/run.py": "import prompt_toolkit\nfrom ..outputs import save\n",
        "outputs/save.py": "def save():\n    from ..engine.run import NOISE\n",  # outputs -> engine
        "switches.py": "def table():\n    import torch\n",                     # parsing -> torch, lazily
        "outputs/readers/a.py": "from diffusers import DDIMScheduler\n",
        "models/load.py": "x = 1\n" * 401,
        "request.py": "def wide(a, b, c, d, e, f, g, h, i):\n    pass\n",
        "ok.py": "import os\nfrom . import shell\n",
    })
    loops = arch.import_loops(root)
    assert ["pkg.commands", "pkg.shell", "pkg.commands"] in loops
    assert ["pkg.engine.run", "pkg.outputs.save", "pkg.engine.run"] in loops
    found = arch.forbidden_imports(root, arch.house_rules("pkg"))
    assert sorted(found) == ["pkg.engine.run:1 imports prompt_toolkit",
                             "pkg.outputs.readers.a:1 imports diffusers",
                             "pkg.outputs.save:2 imports pkg.engine.run",
                             "pkg.switches:2 imports torch"]
    assert arch.long_modules(root) == ["pkg.models.load: 401 lines"]
    assert arch.wide_functions(root) == ["pkg.request.wide: 9 parameters"]
