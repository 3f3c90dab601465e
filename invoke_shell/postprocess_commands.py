"""Post-processing a picture already made, as InvokeAI 2.3 did: `!mask FILE -tm TEXT [THRESHOLD]` writes
CLIPSeg's mask of TEXT (usable with -M) and two previews of it over the picture; `!fix FILE -U ...` / `-G ...`
(with no generating tool) restores the faces and enlarges the picture itself, without running the diffusion
model, into a new PNG whose command is the source's with those switches added. Files are read as data."""

from __future__ import annotations

import json
import re
import shlex

from .command_table import CommandTable, split_words
from .errors import ImageError, ParseError
from .paths import in_outdir
from .postprocess import PLAIN
from .request import GenerationRequest, parse, parse_switches, to_command
from .switch_values import check_value
from .switches import BY_DEST

COMMANDS = CommandTable()
command = COMMANDS.command

_UNSAFE = re.compile(r'[<>:"/\\|?*\s]')  # 2.3's unsafe characters, and spaces (a name then needs no quotes)


def mask_file_names(outdir: str, prefix: str, source: str, text: str) -> dict[str, str]:
    """2.3's names: <prefix>.<source's name>.<text>.{masked,selected,deselected}.png."""
    import os

    stem = os.path.splitext(os.path.basename(source))[0]
    safe = _UNSAFE.sub("_", text)[:50].rstrip(" .") or "mask"
    return {kind: os.path.join(outdir, f"{prefix}.{stem}.{safe}.{kind}.png")
            for kind in ("masked", "selected", "deselected")}


@command("!mask", usage="!mask FILE -tm TEXT [THRESHOLD]", completes="image",
         help="write CLIPSeg's mask of TEXT in a picture (.masked.png, for -M) and previews of it over the picture "
              "(.selected.png, .deselected.png)")
def mask(shell, argument: str) -> None:
    from .engine import textmask
    from .engine.images import open_image
    from .outputs.log import append_log
    from .outputs.metadata import file_sha256
    from .outputs.naming import next_prefix
    from .outputs.pngio import write_png

    words = split_words("!mask", argument)
    if not words or words[0].startswith("-"):
        raise ParseError('!mask needs a picture and what to find in it: !mask FILE -tm "a red hat" [THRESHOLD]')
    values = parse_switches(words[1:])
    if set(values) != {"text_mask"}:
        others = sorted(set(values) - {"text_mask"})
        raise ParseError(f"!mask takes -tm TEXT [THRESHOLD] only{f', not --{others[0]}' if others else ''}: "
                         '!mask FILE -tm "a red hat" 0.5')
    check_value(BY_DEST["text_mask"], values["text_mask"])
    text, threshold = values["text_mask"]
    path = in_outdir(words[0], shell.outdir)
    picture = open_image(path, "!mask")
    tool = shell.manager.tools.get("text_mask")
    segmented = textmask.segment(tool, picture.convert("RGB"), text)
    prefix = next_prefix(shell.outdir)
    record = {"invoke-shell-mask": json.dumps({
        "source": path, "source_sha256": file_sha256(path), "text": text, "threshold": threshold,
        "model": tool.name, "model_sha256": tool.sha256()})}
    names = mask_file_names(shell.outdir, prefix, path, text)
    pictures = {"masked": segmented.mask_file(threshold), "selected": segmented.transparent(True),
                "deselected": segmented.transparent(False)}
    shell.say(textmask.said(tool, text, segmented.share(threshold), threshold, path))
    for kind, name in names.items():
        write_png(name, pictures[kind], record)
        append_log(shell.outdir, name, f"!mask {path} -tm {text!r} {threshold:g}")
        shell.say(f"{name}" + (": the mask (black: repaint), for -M" if kind == "masked" else ""))
    from .picture_commands import show

    show(shell, [(names["masked"], "mask"), (path, "picture")])


POSTPROCESSING = {"upscale", "upscaler", "facetool_strength", "facetool", "codeformer_fidelity", "save_original"}


def changed_tools(shell, command: str, recorded: tuple[tuple[str, str, str], ...]) -> list[str]:
    """A note for each post-processing model a fetched command needs that is not configured here, or whose
    file here is not the one the image was made with (its sha256 differs from the recorded one)."""
    from .errors import ModelError
    from .models.tools import WORDS, entry_sha256, find

    request = parse(command)
    notes = []
    if request.embiggen is not None and request.embiggen[0] > 1 and request.upscaler is None and \
            shell.manager.registry.of_format("upscaler"):
        notes.append("note: this --embiggen records no upscaler (it was made before they were recorded, by "
                     f"Lanczos); add --upscaler {PLAIN} to replay it as it was made")
    wanted = [(fmt, name) for fmt, name, on in (
        ("upscaler", request.upscaler, request.upscaler not in (None, PLAIN)),
        ("facetool", request.facetool, bool(request.facetool_strength)),
        ("text_mask", None, request.text_mask is not None)) if on]
    hashes = {(kind, name): digest for kind, name, digest in recorded}
    for fmt, name in wanted:
        try:
            entry = find(shell.manager.registry, fmt, name)
            digest = hashes.get((fmt, entry.name))
            here = entry_sha256(entry) if digest and entry.location().exists() else digest
        except (ModelError, OSError) as exc:
            notes.append(f"note: {exc}")
            continue
        if here != digest:
            notes.append(f"note: {WORDS[fmt]} {entry.name} here ({entry.location()}) is not the file the image "
                         f"was made with (sha256 {here[:12]} here, {digest[:12]} in the image)")
    return notes


def postprocessing_only(switches: list[str]) -> bool:
    """Whether a !fix's switches ask only for -U/-G and their settings (the picture itself is processed, no
    model runs)."""
    values = parse_switches(switches)
    return bool(values) and set(values) <= POSTPROCESSING and ("upscale" in values or "facetool_strength" in values)


def fix_picture(shell, path: str, switches: list[str], recorded: str | None) -> None:
    """!fix FILE -U/-G: the picture restored and enlarged, written as a new PNG carrying the source's command
    with those switches (and the source's sd-metadata with a `postprocessing` entry for each tool). A source
    post-processed already, or one that records no command, gets a record of what was done instead."""
    import os
    from dataclasses import replace

    from .engine.images import open_image
    from .generation import Output
    from .outputs.log import append_log
    from .outputs.naming import next_prefix
    from .outputs.pngio import write_png
    from .outputs.save import image_name
    from .picture_commands import show_outputs
    from .postprocess import SUFFIX, chain, postprocess

    asked = parse("fix " + " ".join(shlex.quote(s) for s in switches), shell.defaults)
    if asked.upscale is None and not asked.facetool_strength:
        raise ParseError("!fix: -G/--facetool_strength 0 restores nothing: give a strength above 0, or -U SCALE")
    post = chain(asked, shell.manager.tools)
    asked = post.named(asked)
    if asked.save_original:
        shell.say(f"--save_original: the original is {path} itself, left as it is")
    picture = open_image(path, "!fix").convert("RGB")
    base = parse(recorded) if recorded is not None else None
    fixed = None
    if base is not None and (base.upscale is not None or base.facetool_strength):
        shell.say(f"note: {path} was post-processed already (-U/-G): no command makes this picture again, so the "
                  "new PNG records what was done to it rather than a command")
    elif base is not None:
        fixed = to_command(replace(base, **{name: getattr(asked, name) for name in POSTPROCESSING
                                            if name != "save_original"}))
    images, used = postprocess(asked, [picture], post, shell.say)
    chunks = _chunks(path, fixed, recorded, asked, used)
    seed = base.seed if base is not None and base.seed is not None else None
    name = image_name(base) if seed is not None else os.path.splitext(os.path.basename(path))[0]
    out = os.path.join(shell.outdir, f"{next_prefix(shell.outdir)}.{name}{SUFFIX}.png")
    write_png(out, images[0], chunks)
    append_log(shell.outdir, out, fixed or f"!fix {path} {' '.join(switches)}")
    shell.say(f"{out}: {fixed or ('(no command: see the note above)' if base else '(the source records no command)')}")
    shell.previous = [Output(out, seed if seed is not None else 0)]
    show_outputs(shell, shell.previous)


def _chunks(path: str, fixed: str | None, recorded: str | None, asked: GenerationRequest, used) -> dict[str, str]:
    """The new PNG's text: with a command that makes it (`fixed`), the source's sd-metadata (read as data) with
    the tools added to 2.3's `postprocessing` list; otherwise this shell's own record of what was done."""
    from . import __version__
    from .outputs.metadata import APP_ID, file_sha256
    from .outputs.pngio import read_text_chunks

    try:
        meta = json.loads(read_text_chunks(path).get("sd-metadata", "{}"))
    except (ValueError, ImageError):  # a damaged chunk, or a picture that is no PNG: start afresh
        meta = {}
    readable = fixed is not None and isinstance(meta, dict) and isinstance(meta.get("image"), dict)
    image = meta["image"] if readable else {}
    steps = image.get("postprocessing") if isinstance(image.get("postprocessing"), list) else []
    models = {u.kind: u for u in used}
    if asked.facetool_strength:
        tool = models["facetool"]
        steps.append({"tool": asked.facetool, "dream_command": recorded, "strength": asked.facetool_strength,
                      "model": tool.name, "sha256": tool.sha256,
                      **({"fidelity": asked.codeformer_fidelity} if asked.codeformer_fidelity is not None else {})})
    if asked.upscale is not None:
        tool = models["upscaler"]
        steps.append({"tool": "upscale", "dream_command": recorded, "scale": asked.upscale[0],
                      "strength": asked.upscale[1], "model": tool.name, "sha256": tool.sha256})
    image.update(postprocessing=steps, source=path, source_sha256=file_sha256(path))
    chunks = {"Dream": fixed} if fixed is not None else {}
    if readable:
        chunks["sd-metadata"] = json.dumps(meta)
    else:  # a picture from elsewhere, or one no command makes: what was done to it, in this shell's own chunk
        chunks["invoke-shell-fix"] = json.dumps({"app_id": APP_ID, "app_version": __version__, **image})
    return chunks
