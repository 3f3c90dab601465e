"""`!diff A.png B.png [--save FILE]`: how two pictures' commands differ, switch by switch (as `!fetch` reads
them, any metadata family), what they were made with, and how their pixels differ: the difference, 4x
amplified, drawn in the terminal (as the pictures after each command are) and, with `--save`, written as a
PNG. The files' metadata is read as data."""

from __future__ import annotations

from dataclasses import fields

from .command_table import CommandTable, split_words
from .errors import ParseError
from .paths import in_outdir

COMMANDS = CommandTable()
command = COMMANDS.command
AMPLIFY = 4  # the saved difference picture: |A - B| x 4, so a difference of a few levels shows


def switch_differences(a, b) -> list[str]:
    """`name: A | B` for each field of two requests that differs, the prompt first, then in table order."""
    from .switches import BY_DEST

    lines = []
    for field in fields(a):
        left, right = getattr(a, field.name), getattr(b, field.name)
        if left == right:
            continue
        switch = BY_DEST.get(field.name)
        name = switch.name if switch is not None else field.name
        lines.append(f"  {name}: {_shown(left)} | {_shown(right)}")
    return lines


def _shown(value) -> str:
    if value is None or value is False:
        return "(not set)"
    if value is True:
        return "on"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:79] + "…"


def pixel_difference(path_a: str, path_b: str):
    """(a line about the pixels, the amplified difference picture or None)."""
    import numpy as np
    from PIL import Image

    from .engine.images import load_rgb

    a, b = load_rgb(path_a, "!diff"), load_rgb(path_b, "!diff")
    if a.size != b.size:
        return f"pixels: the pictures differ in size ({a.width}x{a.height} and {b.width}x{b.height})", None
    x, y = np.asarray(a, dtype=np.int16), np.asarray(b, dtype=np.int16)
    diff = np.abs(x - y)
    if not diff.any():
        return "pixels: identical", None
    share = (diff.max(axis=-1) > 0).mean()
    line = f"pixels: max {diff.max()}, mean {diff.mean():.2f} levels; {share:.1%} of the pixels differ"
    return line, Image.fromarray(np.clip(diff * AMPLIFY, 0, 255).astype(np.uint8))


@command("!diff", usage="!diff A.png B.png [--save FILE]", completes="image",
         help="how two pictures' commands differ switch by switch, and their pixels (--save: the difference)")
def diff(shell, argument: str) -> None:
    from .outputs.fetch import NoMetadata, read_png
    from .outputs.pngio import write_png
    from .request import parse

    words = split_words("!diff", argument)
    save = None
    if "--save" in words:
        at = words.index("--save")
        if at + 1 >= len(words):
            raise ParseError("!diff: --save needs a file name: --save diff.png")
        save = words[at + 1]
        del words[at:at + 2]
    if len(words) != 2:
        raise ParseError("!diff needs two pictures: !diff A.png B.png [--save FILE]")
    a, b = (in_outdir(word, shell.outdir) for word in words)
    if save is not None:
        import os

        from .paths import writable_folder

        if any(os.path.exists(p) and os.path.exists(save) and os.path.samefile(p, save) for p in (a, b)):
            raise ParseError(f"!diff: --save {save} is one of the two pictures; give another file name")
        writable_folder(os.path.dirname(os.path.abspath(save)), "!diff --save")
    commands = []
    for path in (a, b):
        try:
            commands.append(read_png(path))
        except NoMetadata:
            commands.append(None)
    if all(c is not None for c in commands):
        left, right = (parse(c.command) for c in commands)
        lines = switch_differences(left, right)
        shell.say("commands: the same" if not lines else "commands (A | B):\n" + "\n".join(lines))
        made = [c.made for c in commands]
        if all(m is not None for m in made):
            for line in made[1].differences(made[0]):
                shell.say(f"  made with: {line.replace(' here, ', ' in B, ').replace(' in the file', ' in A')}")
    else:
        missing = " and ".join(p for p, c in zip((a, b), commands) if c is None)
        shell.say(f"commands: {missing} records no command")
    line, picture = pixel_difference(a, b)
    shell.say(line)
    if picture is not None:
        from .picture_commands import draw_picture

        draw_picture(shell, picture)
    if save is not None:
        if picture is None:
            shell.say(f"--save: nothing written ({line.removeprefix('pixels: ')})")
            return
        write_png(save, picture, {"Comment": f"!diff {a} {b}: |A - B| x {AMPLIFY}"})
        shell.say(f"the difference, {AMPLIFY}x: {save}")
