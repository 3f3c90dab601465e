"""Expand a sweep template (YAML or JSON) into a command file, in the spirit of InvokeAI's invokeai-batch.

    mode: product              # every combination (the default); zip: the i-th value of each list together
    prompt: a {color} star     # or prompts: [...]; {name} takes each value of vars.name
    vars: {color: [red, blue]}
    seeds: [1592514025, 7]
    init_img: sketch.png
    strengths: [0.3, 0.5, 0.7, 0.9]
    steps: [10, 20, 30]
    sampler: k_lms
    width: 64                  # any switch of the table, by its long name; a list sweeps it
    switches: -H 64 -C 7.5     # fixed switches, written as on the command line

A key is a switch's long name (`steps`, `cfg_scale`, `init_img`...) or that name plus `s`; a list sweeps
the switch, a single value fixes it. In product mode the first list in the file varies slowest. Each
command is written by `request.to_command`, so it is the canonical command a PNG would carry: steps,
cfg_scale and sampler are always spelled out (the defaults when the template leaves them out).
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
from dataclasses import fields
from pathlib import Path

import yaml

from ..errors import ParseError, ShellError
from ..request import Defaults, GenerationRequest, check_prompt, parse_switches, to_command
from ..switch_values import check_value
from ..switches import BY_DEST, SWITCHES, Switch

MODES = ("product", "zip")
MAX_COMMANDS = 100_000
_REQUIRED = ("steps", "cfg_scale", "sampler")  # GenerationRequest needs them; Defaults supplies them


class TemplateError(ShellError):
    """A template that cannot be expanded; the message names the file and the key."""


def _keys() -> dict[str, Switch | str]:
    """Every key a template may use -> its switch (or `prompt` / `vars` / ...)."""
    request_fields = {f.name for f in fields(GenerationRequest)}
    keys: dict[str, Switch | str] = {"mode": "mode", "switches": "switches", "vars": "vars",
                                     "prompt": "prompt", "prompts": "prompt"}
    for sw in SWITCHES:
        if sw.dest not in request_fields:
            continue
        for name in (sw.dest, sw.long[0][2:]):
            keys[name] = sw
            keys[name if name.endswith("s") else name + "s"] = sw
    return keys


def _value(sw: Switch, raw: object) -> object:
    """A template value as the request holds it, checked against the switch table. Text goes through
    the command-line parser (`"0.5"`, `K_LMS`, `1:0.1,2:0.2`); numbers and true/false are taken as they are."""
    if sw.kind == "flag" and not isinstance(raw, bool):
        raise ParseError(f"{sw.name} is a flag: give true or false, got {raw!r}")
    if isinstance(raw, str) and sw.kind != "path":
        raw = parse_switches([f"{sw.long[0]}={raw}"])[sw.dest]
    elif sw.kind == "float" and isinstance(raw, int) and not isinstance(raw, bool):
        raw = float(raw)
    check_value(sw, raw)
    return raw


def load(path: str) -> dict:
    """The template at `path` as a mapping (JSON when the name ends in .json, YAML otherwise)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"cannot read {path}: {exc}") from None
    try:
        data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)  # YAML
        line = mark.line + 1 if mark is not None else getattr(exc, "lineno", None)  # JSON
        at = f" at line {line}" if line is not None else ""
        raise TemplateError(f"{path}: malformed {'JSON' if path.endswith('.json') else 'YAML'}{at}") from None
    if not isinstance(data, dict):
        raise TemplateError(f"{path}: expected a mapping of keys (prompt, seeds, steps...), got {type(data).__name__}")
    return data


def expand(template: dict, name: str = "template", defaults: Defaults = Defaults()) -> list[str]:
    """The canonical commands of a template, in sweep order. Raises TemplateError naming the key."""
    keys = _keys()
    mode = template.get("mode", "product")
    if mode not in MODES:
        raise TemplateError(f"{name}: mode must be one of {', '.join(MODES)}; got {mode!r}")
    fixed: dict[str, object] = {}
    swept: list[tuple[str, str, list]] = []  # (key, dest, values), in file order
    seen: dict[str, str] = {}
    for key, raw in template.items():
        target = keys.get(key)
        if target is None:
            raise TemplateError(f"{name}: unknown key {key!r}; use mode, prompt(s), vars, switches or a switch's "
                                f"long name: {', '.join(sw.dest for sw in SWITCHES)}")
        if target == "mode":
            continue
        if target == "switches":
            for dest, value in _fixed_switches(name, raw).items():
                _claim(name, seen, dest, "switches")
                fixed[dest] = value
            continue
        if target == "vars":
            if not isinstance(raw, dict) or not raw:
                raise TemplateError(f"{name}: vars must map names to values, e.g. vars: {{color: [red, blue]}}")
            for var, values in raw.items():
                values = values if isinstance(values, list) else [values]
                _check_list(name, f"vars.{var}", values)
                swept.append((f"vars.{var}", f"{{{var}}}", [str(v) for v in values]))
            continue
        dest = "prompt" if target == "prompt" else target.dest
        _claim(name, seen, dest, key)
        values = raw if isinstance(raw, list) else [raw]
        _check_list(name, key, values)
        try:
            if dest == "prompt":
                for v in values:
                    if not isinstance(v, str):
                        raise ParseError(f"a prompt must be text, got {v!r}")
                converted = list(values)
            else:
                converted = [_value(target, v) for v in values]
        except ParseError as exc:
            raise TemplateError(f"{name}: {key}: {exc}") from None
        if isinstance(raw, list):
            swept.append((key, dest, converted))
        else:
            fixed[dest] = converted[0]
    if "prompt" not in seen:
        raise TemplateError(f"{name}: no prompt: give prompt: TEXT or prompts: [TEXT, ...]")
    if "strength" in seen and "init_img" not in seen:
        raise TemplateError(f"{name}: {seen['strength']}: needs init_img (the strength is img2img's noise level)")
    if mode == "zip":
        lengths = {key: len(values) for key, _, values in swept}
        if len(set(lengths.values())) > 1:
            raise TemplateError(f"{name}: mode zip needs lists of one length; got "
                                + ", ".join(f"{k} {n}" for k, n in lengths.items()))
        combos = list(zip(*(values for _, _, values in swept))) if swept else [()]
    else:
        count = 1
        for _, _, values in swept:
            count *= len(values)
        if count > MAX_COMMANDS:
            raise TemplateError(f"{name}: the product makes {count} commands; at most {MAX_COMMANDS} are allowed")
        combos = list(itertools.product(*(values for _, _, values in swept)))
    commands = []
    for combo in combos:
        values = dict(fixed)
        var_values = {}
        for (key, dest, _), value in zip(swept, combo):
            if key.startswith("vars."):
                var_values[dest] = value
            else:
                values[dest] = value
        values["prompt"] = _fill(values["prompt"], var_values)
        for dest in _REQUIRED:
            values.setdefault(dest, getattr(defaults, dest))
        if values.get("init_img") is not None:
            values.setdefault("strength", defaults.strength)
        try:
            check_prompt(values["prompt"])
            commands.append(to_command(GenerationRequest(**values)))
        except ParseError as exc:
            varied = " ".join(f"{key}={value}" for (key, _, _), value in zip(swept, combo))
            raise TemplateError(f"{name}: {f'with {varied}: ' if varied else ''}{exc}") from None
    return commands


def _fill(prompt: str, var_values: dict[str, str]) -> str:
    return re.sub(r"\{[A-Za-z_][A-Za-z0-9_]*\}", lambda m: var_values.get(m.group(0), m.group(0)), prompt)


def _claim(name: str, seen: dict[str, str], dest: str, key: str) -> None:
    if dest in seen:
        raise TemplateError(f"{name}: {key} and {seen[dest]} both set {dest}; keep one")
    seen[dest] = key


def _check_list(name: str, key: str, values: list) -> None:
    if not values:
        raise TemplateError(f"{name}: {key}: the list is empty")
    for v in values:
        if isinstance(v, (list, dict)) or v is None:
            raise TemplateError(f"{name}: {key}: expected single values, got {v!r}")


def _fixed_switches(name: str, raw: object) -> dict[str, object]:
    if not isinstance(raw, str):
        raise TemplateError(f"{name}: switches must be text as on the command line, e.g. switches: -W 64 -H 64")
    try:
        values = parse_switches(shlex.split(raw))
        for dest, value in values.items():
            check_value(BY_DEST[dest], value)
    except ValueError as exc:  # shlex
        raise TemplateError(f"{name}: switches: cannot split {raw!r} into words ({exc})") from None
    except ParseError as exc:
        raise TemplateError(f"{name}: switches: {exc}") from None
    return values


def header(name: str, template: dict, count: int) -> str:
    """The comment line written first in an expanded file."""
    mode = template.get("mode", "product")
    return f"# {count} commands expanded ({mode}) from {name} by python -m invoke_shell.batch expand"
