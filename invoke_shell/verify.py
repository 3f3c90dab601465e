"""`!verify FILE|GLOB [...] [--keep] [--precision TYPE]`: re-run the command of each PNG on the models in
models.yaml and compare the pixels. One line per file, `identical` or `differs: max D, mean d` with what can
be seen to differ (model hash, precision, device, versions, an init image or mask changed), then
`verify: K of N identical`. Nothing is written unless `--keep` (each re-run beside its original, as
`<name>.verify.png`)."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from .errors import ImageError, ModelError, ParseError, ShellError
from .outputs.fetch import NoMetadata, matching_files, read_png
from .paths import in_outdir
from .generation import prepare, refiner_for, render
from .request import parse, parse_switches
from .switch_values import shown_value

USAGE = "!verify FILE|GLOB [...] [--keep] [--precision TYPE]"


@dataclass(frozen=True)
class Options:
    patterns: tuple[str, ...]
    keep: bool = False
    precision: str | None = None  # None: each file's recorded precision (else the session's)


def parse_arguments(argument: str) -> Options:
    try:
        words = shlex.split(argument)
    except ValueError as exc:
        raise ParseError(f"!verify: cannot split {shown_value(argument)} into words ({str(exc).lower()})") from None
    patterns, keep, precision = [], False, None
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--keep":
            keep = True
        elif word == "--precision" or word.startswith("--precision="):
            given = [word] if "=" in word else words[i:i + 2]  # checked as the switch table's --precision
            i += len(given) - 1
            precision = parse_switches(given)["precision"]
        elif word.startswith("--"):
            raise ParseError(f"!verify: unknown option {shown_value(word)}; usage: {USAGE}")
        else:
            patterns.append(word)
        i += 1
    if not patterns:
        raise ParseError(f"!verify needs PNG files: {USAGE}")
    return Options(tuple(patterns), keep, precision)


def files_of(patterns: tuple[str, ...], outdir: str | None = None) -> list[str]:
    """Every file the patterns name (here, else in `outdir`), in order, each once; ImageError for a pattern
    that names none."""
    found: dict[str, None] = {}
    for pattern in patterns:
        paths = matching_files(in_outdir(pattern, outdir))
        if not paths or not all(os.path.isfile(p) for p in paths):
            raise ImageError(f"!verify: no file matches {pattern}")
        found.update(dict.fromkeys(p for p in paths if not p.endswith((".strip.png", ".verify.png"))))
    return list(found)


def verify(shell, argument: str) -> None:
    options = parse_arguments(argument)
    paths = files_of(options.patterns, shell.outdir)
    if not paths:
        raise ImageError("!verify: only --strip pictures and earlier re-runs match; give the images themselves")
    session_model = shell.model()  # finish any background load: the session's model comes back after
    identical = 0
    try:
        for path in paths:
            verdict, same = check(shell, path, options)
            identical += same
            shell.say(f"{path}: {verdict}")
    finally:
        if shell.manager.active is not session_model and shell.manager.active is not None:
            shell.manager.activate(session_model.name, session_model.requested)
    shell.say(f"verify: {identical} of {len(paths)} identical")


def check(shell, path: str, options: Options) -> tuple[str, bool]:
    """(the verdict after `path: `, whether identical) for one PNG."""
    from .engine import adapters
    from .engine import generate as engine
    from .outputs.pngio import write_png
    from .outputs.provenance import installed

    try:
        rebuilt = read_png(path)
    except NoMetadata:
        return "not verified: no generation metadata", False
    except (ParseError, ImageError) as exc:
        return f"not verified: {exc}", False
    from .postprocess import chain, postprocess, text_masker

    request = parse(rebuilt.command)
    if request.seed is None:
        return "not verified: the file records no seed", False
    recorded = rebuilt.made.precision if rebuilt.made is not None else None
    precision = options.precision or request.precision or recorded
    request = replace(request, precision=precision)
    from .postprocess_commands import changed_tools

    reasons = [line.removeprefix("note: ") for line in rebuilt.changed_inputs() +
               changed_tools(shell, rebuilt.command, rebuilt.weights)]
    missing = [r for r in reasons if "is not there" in r or "not a regular file" in r]
    if missing:
        return f"not verified: {missing[0]}", False
    model, model_notes = _model(shell, rebuilt, precision)
    if model is None:
        return f"not verified: {model_notes[0]}", False
    adapters.apply(model, request.extras, shell.library)
    refiner = refiner_for(request, model, shell.manager)
    quiet = lambda line: None  # noqa: E731  (the verdict line says what matters)
    try:
        post = chain(request, shell.manager.tools)  # -G, -U and -tm's models, as the file names them
    except ModelError as exc:
        return f"not verified: {exc}", False
    masker = text_masker(request, shell.manager.tools, quiet, [])
    if rebuilt.batch is not None:  # made in one model pass with others: the same pass again
        commands, index = rebuilt.batch
        jobs = [engine.prepare(replace(parse(c), precision=precision), model, masker) for c in commands]
        images = [render(request, jobs, model, quiet, refiner, None, post.upscaler)[0][index]]
    else:
        images = render(request, prepare(request, True, model, masker), model, quiet, refiner, None, post.upscaler)[0]
    images = postprocess(request, images, post, quiet)[0]
    if request.grid and len(images) > 1:
        from .outputs.save import make_grid

        image = make_grid(images)
    else:
        image = images[0]
    if options.keep:
        stem = path[: -len(".png")] if path.lower().endswith(".png") else path
        write_png(f"{stem}.verify.png", image, {"Dream": rebuilt.command})
    reasons = model_notes + reasons
    if rebuilt.made is not None:
        here = engine.provenance(model)
        reasons += here.differences(rebuilt.made)
    elif rebuilt.family:
        reasons.append(f"made by {rebuilt.family}, whose noise and samplers are not this shell's")
    else:
        reasons.append(f"made before precision and versions were recorded (here {model.pick.dtype} on "
                       f"{model.device}, torch {installed('torch')}, diffusers {installed('diffusers')})")
    return _compare(path, image, reasons)


def _model(shell, rebuilt, precision: str | None):
    """The model to re-run on, in `precision`, and notes on it; (None, [why]) when it is not here."""
    registry = shell.manager.registry
    name = rebuilt.model
    notes = []
    if name is None:
        name = shell.model().name
        notes.append(f"the file names no model: re-ran on {name}")
    elif name not in registry.names():
        return None, [f"model {name!r} is not in models.yaml"]
    model = shell.manager.activate(name, precision)
    if rebuilt.model_hash and not model.content_hash().startswith(rebuilt.model_hash.lower()):
        notes.append(f"model {name}'s files differ from those the image was made with (sha256 "
                     f"{model.content_hash()[:10]} here, {rebuilt.model_hash[:10]} in the file)")
    return model, notes


def _compare(path: str, image: Image.Image, reasons: list[str]) -> tuple[str, bool]:
    try:
        with Image.open(path) as im:
            original = np.asarray(im.convert("RGB"), dtype=np.int16)
    except (OSError, ValueError) as exc:
        raise ShellError(f"!verify: cannot read the pixels of {path}: {exc}") from None
    again = np.asarray(image.convert("RGB"), dtype=np.int16)
    if original.shape != again.shape:
        head = (f"differs: the re-run is {again.shape[1]}x{again.shape[0]}, the file "
                f"{original.shape[1]}x{original.shape[0]}")
        return head + (f" ({'; '.join(reasons)})" if reasons else ""), False
    diff = np.abs(original - again)
    if not diff.any():
        return "identical", True
    head = f"differs: max {int(diff.max())}, mean {float(diff.mean()):.2f}"
    return head + (f" ({'; '.join(reasons)})" if reasons else ""), False
