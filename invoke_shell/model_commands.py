"""The model commands: !import_model, !edit_model, !del_model, !convert_model.

Interactively they ask their questions through the prompt (defaults pre-filled); every answer can also be
given as a switch, which is how they run inside --from_file and !replay.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import replace
from pathlib import Path

from .command_table import CommandTable
from .errors import ModelError, ParseError
from .models.registry import NAME_PATTERN, ModelEntry
from .models.tools import WORDS, a, load, recognise
from .questions import ask, confirm, yes

COMMANDS = CommandTable()
command = COMMANDS.command

CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth")  # .pth: upscalers and face restorers
_TEXT = {"--name", "--description", "--path", "--weights", "--config", "--vae"}
_INT = {"--width", "--height"}
_FLAGS = {"--default", "--yes", "--all"}


def _options(command_name: str, argument: str, allowed: set[str]) -> tuple[list[str], dict[str, object]]:
    """Split `argument` into positional words and --switches (one-line ParseError on anything odd)."""
    try:
        tokens = shlex.split(argument)
    except ValueError as exc:
        raise ParseError(f"{command_name}: {str(exc).lower()}: check the quotes") from None
    positional, options = [], {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        name, eq, glued = token.partition("=")
        if not token.startswith("--"):
            positional.append(token)
        elif name not in allowed:
            raise ParseError(f"{command_name}: unknown switch {name!r}; allowed: {', '.join(sorted(allowed))}")
        elif name in _FLAGS:
            options[name] = True
        else:
            if not eq:
                i += 1
                if i >= len(tokens):
                    raise ParseError(f"{command_name}: {name} needs a value")
                glued = tokens[i]
            if name in _INT:
                try:
                    options[name] = int(glued)
                except ValueError:
                    raise ParseError(f"{command_name}: {name} expects an integer, got {glued!r}") from None
            else:
                options[name] = glued
        i += 1
    return positional, options


def _named_stanza(shell, command_name: str, argument: str, allowed: set[str], usage: str):
    """(the writable registry, the stanza NAME names, the options) of `!cmd NAME [options]`."""
    positional, options = _options(command_name, argument, allowed)
    if len(positional) != 1:
        raise ParseError(f"{command_name} needs a model name: {usage}")
    registry = _writable_registry(shell)
    return registry, registry.get(positional[0]), options


def _writable_registry(shell):
    registry = shell.manager.registry
    if registry.source is None:
        raise ModelError("no models.yaml to write; start invoke-shell with --conf FILE")
    return registry


def _candidates(path: Path) -> list[Path]:
    """What a path names: a diffusers folder, a checkpoint file, or a folder holding several of them."""
    if path.is_file():
        if path.suffix.lower() not in CHECKPOINT_SUFFIXES:
            raise ModelError(f"{path}: not a model file (expected {', '.join(CHECKPOINT_SUFFIXES)})")
        return [path]
    if (path / "model_index.json").is_file() or path.is_dir() and recognise(path) == "text_mask":  # CLIPSeg
        return [path]
    if path.is_dir():
        found = sorted({p.parent for p in path.glob("*/model_index.json")} |
                       {p.parent for p in path.glob("*/config.json") if recognise(p.parent)} |
                       {p for p in path.iterdir() if p.suffix.lower() in CHECKPOINT_SUFFIXES and p.is_file()})
        if not found:
            raise ModelError(f"{path}: no diffusers folders or checkpoint files in this folder")
        return found
    raise ModelError(f"no such file or folder: {path}")


def _suggest_name(path: Path, taken) -> str:
    base = re.sub(r"[^\w.+-]+", "-", path.stem if path.is_file() else path.name).strip("-") or "model"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


@command("!import_model", "!import", usage="!import_model PATH", completes="model_file",
         help="add a diffusers folder or checkpoint, an upscaler or face restorer (.pth, .safetensors) or a "
              "CLIPSeg folder (or every one in a folder) to models.yaml")
def import_model(shell, argument: str) -> None:
    positional, options = _options("!import_model", argument, _TEXT | _INT | {"--default", "--all"})
    if len(positional) != 1:
        raise ParseError("!import_model needs one path: !import_model PATH [--name N] [--description D] [--default] "
                         "[--all]")
    shell.model()  # let a background load finish first
    targets = _candidates(Path(os.path.expanduser(positional[0])))
    everything = bool(options.get("--all"))  # a folder of models: each with its suggested name, nothing asked
    if len(targets) > 1:
        shell.say(f"found {len(targets)} models in {positional[0]}: " + ", ".join(t.name for t in targets))
    for target in targets:
        if len(targets) > 1 and not everything and shell.ask is not None and not yes(shell, f"import {target.name}?"):
            continue
        registry = _writable_registry(shell)
        name = options.get("--name") if len(targets) == 1 else None
        suggested = _suggest_name(target, registry.names())
        name = name or (suggested if everything else ask(shell, f"name for {target}", suggested))
        if not NAME_PATTERN.fullmatch(name):
            raise ParseError(f"!import_model: model name {name!r}: use letters, digits and . _ + : / - only")
        if name in registry.names():
            raise ModelError(f"!import_model: a model named {name!r} exists already")
        description = options.get("--description") or (
            f"imported from {target}" if everything else ask(shell, "description", f"imported from {target}"))
        tool = recognise(target)
        if tool is None and target.suffix.lower() == ".pth":
            raise ModelError(f"!import_model: {target.name} is neither an upscaler or face restorer spandrel "
                             "recognises nor a Stable Diffusion checkpoint")
        kind = WORDS[tool] if tool else "model"
        make_default = bool(options.get("--default")) and len(targets) == 1 or (
            not everything and shell.ask is not None and yes(shell, f"make it the default {kind}?"))
        absolute = str(target.resolve())
        if tool is not None:
            entry = ModelEntry(name, description, tool, path=absolute, default=make_default)
        elif target.is_file():
            entry = ModelEntry(name, description, "ckpt", weights=absolute, config=options.get("--config"),
                               vae=options.get("--vae"), width=options.get("--width"),
                               height=options.get("--height"), default=make_default)
        else:
            entry = ModelEntry(name, description, "diffusers", path=absolute, vae=options.get("--vae"),
                               default=make_default)
        entry = replace(entry, base_dir=str(Path(registry.source).resolve().parent))
        shell.say(f"test-loading {name} from {target}...")
        if tool is not None:
            shell.say(f"{name}: {load(entry).describe()}, {a(kind)} (format: {tool})")
        else:
            shell.manager.preload(entry)
        updated = registry.with_entry(entry)
        updated.save()
        shell.manager.set_registry(updated)
        shell.say(f"imported {name} into {registry.source}" + (f" as the default {kind}" if make_default else ""))


@command("!edit_model", "!edit", usage="!edit_model NAME", completes="model",
         help="change a model's stanza in models.yaml (asks for each field)")
def edit_model(shell, argument: str) -> None:
    registry, old, options = _named_stanza(shell, "!edit_model", argument, _TEXT | _INT | {"--default"},
                                           "!edit_model NAME [--description D] [--path P] ...")
    changes = {}
    for switch, key in (("--name", "name"), ("--description", "description"), ("--path", "path"),
                        ("--weights", "weights"), ("--config", "config"), ("--vae", "vae")):
        current = getattr(old, key)
        if key == "path" and old.format == "ckpt" or key in ("weights", "config") and old.format != "ckpt" \
                or key == "vae" and old.is_tool:
            if switch in options:
                raise ParseError(f"!edit_model: a {old.format} stanza has no {key}")
            continue
        if switch in options:
            changes[key] = options[switch]
        elif shell.ask is not None and not options:
            answer = ask(shell, key, current or "")
            if answer != (current or ""):
                changes[key] = answer or None
    for switch, key in (("--width", "width"), ("--height", "height")):
        if switch in options:
            changes[key] = options[switch]
    if options.get("--default"):
        changes["default"] = True
    if not changes:
        shell.say(f"{old.name}: nothing changed")
        return
    updated = registry.with_entry(replace(old, **changes), replacing=old.name)
    is_active = shell.manager.active is not None and shell.manager.active.name == old.name
    reload_needed = bool(changes.keys() - {"description", "default"})
    if reload_needed and not is_active:
        shell.manager.forget(old.name)
    updated.save()
    shell.manager.set_registry(updated)
    if is_active and reload_needed:
        shell.say(f"edited {old.name}; the new settings apply the next time it loads")
    else:
        shell.say(f"edited {changes.get('name', old.name)}")


@command("!del_model", "!del", usage="!del_model NAME", completes="model",
         help="remove a model from models.yaml (its files stay on disk)")
def del_model(shell, argument: str) -> None:
    registry, entry, options = _named_stanza(shell, "!del_model", argument, {"--yes"}, "!del_model NAME [--yes]")
    name = entry.name
    shell.model()
    if shell.manager.active is not None and shell.manager.active.name == name:
        raise ModelError(f"!del_model: {name!r} is the active model; !switch to another first")
    if not confirm(shell, f"delete {name} from {registry.source}? (its files stay on disk)", bool(options.get("--yes"))):
        shell.say("nothing deleted")
        return
    shell.manager.forget(name)
    updated = registry.without(name)
    updated.save()
    shell.manager.set_registry(updated)
    shell.say(f"deleted {name} from {registry.source}")


def _keep_scheduler_defaults(scheduler, path: Path) -> None:
    """The scheduler config as the model's own folder had it: keys it left to diffusers' defaults stay out
    (save_pretrained writes them all, and a key written out is kept when another sampler's scheduler is made
    from the config, where a missing one takes that scheduler's default: timestep_spacing decides the steps)."""
    import json

    saved = json.loads(scheduler.to_json_string())
    for key in list(scheduler.config.get("_use_default_values") or ()) + ["_use_default_values"]:
        saved.pop(key, None)
    path.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n", encoding="utf-8")


@command("!convert_model", "!optimize_model", usage="!convert_model NAME [--dest DIR]", completes="model",
         help="write a single-file model as a diffusers folder (float32 safetensors) and point its stanza there")
def convert_model(shell, argument: str) -> None:
    import shutil

    registry, entry, options = _named_stanza(shell, "!convert_model", argument, {"--dest"},
                                             "!convert_model NAME [--dest DIR]")
    if entry.is_tool:
        raise ModelError(f"!convert_model: {entry.name!r} is a post-processing model (format: {entry.format}); "
                         "it runs from its file as it is")
    if entry.format != "ckpt":
        raise ModelError(f"!convert_model: {entry.name!r} is a diffusers folder already ({entry.location()})")
    dest = Path(os.path.expanduser(options.get("--dest") or
                                   Path(registry.source).resolve().parent / "converted" / entry.name))
    if dest.exists():
        raise ModelError(f"!convert_model: {dest} exists already; give --dest DIR for another folder")
    shell.say(f"converting {entry.name} ({entry.location()}) to a diffusers folder in {dest}...")
    pipe = shell.manager.load_apart(entry).txt2img
    partial = dest.with_name(f".{dest.name}.converting")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        pipe.save_pretrained(partial, safe_serialization=True)
        _keep_scheduler_defaults(pipe.scheduler, partial / "scheduler" / "scheduler_config.json")
        os.replace(partial, dest)  # the folder appears whole, or not at all
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise ModelError(f"!convert_model: cannot write {dest} ({exc.strerror or exc})") from None
    converted = replace(entry, format="diffusers", path=str(dest.resolve()), weights=None, config=None)
    updated = registry.with_entry(converted, replacing=entry.name)
    updated.save()
    shell.manager.set_registry(updated)
    if shell.manager.active is None or shell.manager.active.name != entry.name:
        shell.manager.forget(entry.name)
    shell.say(f"converted {entry.name}: its stanza in {registry.source} now names {dest} (the single file stays "
              "where it was)")
