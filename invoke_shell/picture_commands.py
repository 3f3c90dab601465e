"""Pictures in the terminal, as commands: the thumbnail after each command's images, `!show FILE|GLOB` and
`!preview [inline|blocks|off]` (pictures.py draws them). Drawn only when the output is a terminal."""

from __future__ import annotations

import os

from .command_table import CommandTable, split_words
from .errors import ParseError
from .paths import in_outdir

COMMANDS = CommandTable()
command = COMMANDS.command


def drawing(shell) -> bool:
    """Whether pictures are drawn now: the output is a terminal and the preview is on."""
    return shell.draw is not None and shell.preview != "off"


def draw_picture(shell, picture) -> None:
    """Draw a picture in the terminal as the preview mode says, when pictures are drawn."""
    from .pictures import render

    if drawing(shell):
        shell.draw(render(picture, shell.preview, os.environ))


def show(shell, paths_and_labels: list[tuple[str, str]]) -> None:
    """Draw one picture, or several as a contact sheet labelled with their seeds, when the shell draws."""
    from .engine.images import load_rgb
    from .pictures import contact_sheet

    if not drawing(shell) or not paths_and_labels:
        return
    opened = [(load_rgb(path, "!show"), label) for path, label in paths_and_labels]  # one line if not a picture
    draw_picture(shell, opened[0][0] if len(opened) == 1 else contact_sheet(opened))


def show_outputs(shell, outputs) -> None:
    show(shell, [(output.path, f"seed {output.seed}") for output in outputs])


@command("!preview", usage="!preview [inline|blocks|off]",
         help="pictures after each command: inline (the terminal's own protocol, else half-blocks), blocks, off")
def preview(shell, argument: str) -> None:
    from .pictures import MODES, protocol

    mode = argument.strip().lower()
    if mode and mode not in MODES:
        raise ParseError(f"!preview must be one of {', '.join(MODES)}; got {argument.strip()!r}")
    if mode:
        shell.preview = mode
    found = protocol(os.environ) or "half-blocks"
    where = "" if shell.draw is not None else " (the output is not a terminal: nothing is drawn)"
    shell.say(f"preview: {shell.preview}" + (f" ({found} here)" if shell.preview == "inline" else "") + where)


@command("!show", usage="!show FILE|GLOB [...]", completes="image",
         help="draw pictures in the terminal (several as a contact sheet labelled with their seeds)")
def show_files(shell, argument: str) -> None:
    from .outputs.fetch import matching_files

    patterns = split_words("!show", argument)
    if not patterns:
        raise ParseError("!show needs a picture: !show FILE|GLOB")
    paths = [p for pattern in patterns for p in matching_files(in_outdir(pattern, shell.outdir))]
    missing = [p for p in paths if not os.path.isfile(p)]
    if not paths or missing:
        raise ParseError(f"!show: no picture {missing[0] if missing else patterns[0]}")
    if shell.draw is None:
        shell.say("!show: pictures are drawn only in a terminal, and the output here is not one")
        return
    if shell.preview == "off":
        shell.say("!show: the preview is off (!preview inline or blocks turns it on)")
        return
    show(shell, [(p, _label(p)) for p in paths[:36]])
    if len(paths) > 36:
        shell.say(f"!show: the first 36 of {len(paths)} pictures")


def _label(path: str) -> str:
    """A picture's seed from its `<prefix>.<seed>.png` name, else its name."""
    parts = os.path.basename(path).split(".")
    return f"seed {parts[1]}" if len(parts) >= 3 and parts[1].isdigit() else os.path.basename(path)
