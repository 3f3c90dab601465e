"""The house rules, read from the source with `ast` (nothing is imported): the imports between the modules
of a package, the loops among them, and the rules of ../shared/STYLE.md that tests/test_architecture.py
keeps (which rooms may import what, how long a module and how wide a signature may be)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

MAX_MODULE_LINES = 400
MAX_PARAMETERS = 8


@dataclass(frozen=True)
class Import:
    source: str      # the importing module, dotted (invoke_shell.engine.generate)
    target: str      # the imported module, dotted; for `from X import name`, X.name when that is a module
    line: int
    lazy: bool       # inside a function


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def imports_of(root: Path, path: Path) -> list[Import]:
    """Every import in `path` (a module of the package at `root`), with relative imports made absolute."""
    module = module_name(root, path)
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend(Import(module, alias.name, child.lineno, lazy) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = _resolve(module, path.name == "__init__.py", child.level, child.module)
                for alias in child.names:
                    candidate = f"{base}.{alias.name}"
                    found.append(Import(module, candidate if _is_module(root, candidate) else base, child.lineno, lazy))
            visit(child, inner)

    visit(tree, False)
    return found


def _is_module(root: Path, dotted: str) -> bool:
    parts = dotted.split(".")
    if parts[0] != root.name:
        return False
    path = root.parent.joinpath(*parts)
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def all_imports(root: Path) -> list[Import]:
    return [i for path in sorted(root.rglob("*.py")) for i in imports_of(root, path)]


def _owner(dotted: str, modules: set[str]) -> str | None:
    """The package module an import lands in (the longest known prefix)."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in modules:
            return ".".join(parts[:n])
    return None


def import_loops(root: Path) -> list[list[str]]:
    """The import cycles between the package's modules (eager and lazy imports alike), each as a path that
    returns to its start; a package's __init__ importing its own submodules is not counted."""
    modules = {module_name(root, p) for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for imp in all_imports(root):
        target = _owner(imp.target, modules)
        if target is None or target == imp.source:
            continue
        if imp.source.startswith(target + "."):  # a submodule naming its package: `from .. import x`
            continue
        if target.startswith(imp.source + "."):  # a package importing its submodule
            continue
        graph[imp.source].add(target)
    loops, state, stack = [], {}, []

    def walk(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                loops.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            walk(node)
    return loops


HEAVY = ("torch", "diffusers", "compel", "transformers")
PARSING = ("switches", "request", "completion", "history", "samplers", "seeds", "prompt_extras", "outputs.readers",
           "models.library", "switch_values", "fnformat", "root", "pictures")


def house_rules(package: str) -> list[tuple[str, tuple[str, ...]]]:
    """(module prefix, what it may never import, eagerly or lazily), after ../shared/STYLE.md: the engine
    and the models know nothing of the terminal; parsing knows nothing of torch; outputs take what they need
    from the engine as values."""
    return ([(f"{package}.engine", ("prompt_toolkit",)), (f"{package}.models", ("prompt_toolkit",))]
            + [(f"{package}.{module}", HEAVY) for module in PARSING]
            + [(f"{package}.outputs", (f"{package}.engine",))])


def forbidden_imports(root: Path, rules: list[tuple[str, tuple[str, ...]]]) -> list[str]:
    """`path:line module imports target` for every import (eager or lazy) of a module under a prefix in
    `rules` that reaches one of that rule's forbidden prefixes."""
    found = []
    for imp in all_imports(root):
        for prefix, forbidden in rules:
            if imp.source == prefix or imp.source.startswith(prefix + "."):
                for bad in forbidden:
                    if imp.target == bad or imp.target.startswith(bad + "."):
                        found.append(f"{imp.source}:{imp.line} imports {imp.target}")
    return found


def long_modules(root: Path, limit: int = MAX_MODULE_LINES) -> list[str]:
    return [f"{module_name(root, p)}: {n} lines" for p in sorted(root.rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > limit]


def wide_functions(root: Path, limit: int = MAX_PARAMETERS) -> list[str]:
    """Functions with more than `limit` parameters (self and cls not counted)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
                names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
                count = len([n for n in names if n not in ("self", "cls")])
                if count > limit:
                    found.append(f"{module_name(root, path)}.{node.name}: {count} parameters")
    return found
