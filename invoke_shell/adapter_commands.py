"""The LoRA and embedding commands: !triggers (COMMANDS)."""

from __future__ import annotations

from .command_table import CommandTable
from .errors import ParseError

COMMANDS = CommandTable()
command = COMMANDS.command


@command("!triggers", usage="!triggers",
         help="list the embedding triggers (<name>) and LoRA names (withLora(name,weight) or <lora:name:weight>) "
              "found now in the embedding and LoRA folders, with what each is for")
def _triggers(shell, argument: str) -> None:
    from .engine.adapters import describe

    if argument:
        raise ParseError(f"!triggers takes no argument, got {argument!r}")
    model = shell.manager.active
    for kind, title, form in (("embedding", "embeddings", "<{}>"), ("lora", "LoRAs", "{}")):
        folders = ", ".join(str(d) for d in shell.library.dirs[kind])
        files = shell.library.files(kind)
        shell.say(f"{title} in {folders}: {len(files) or 'none'}")
        width = max((len(form.format(name)) for name in files), default=0)
        for name, file in sorted(files.items()):
            shell.say(f"  {form.format(name):<{width}}  {describe(file, model)}")


def missing_or_changed(shell, command: str, recorded: tuple[tuple[str, str, str], ...]) -> list[str]:
    """A note for each LoRA or embedding a fetched command names that is not in this session's folders, or
    whose file here is not the one the image was made with (its hash differs from the recorded one)."""
    from .engine.adapters import find_embedding
    from .errors import ModelError
    from .models.library import KIND_WORDS
    from .request import parse

    extras = parse(command).extras
    hashes = {(kind, name): digest for kind, name, digest in recorded}
    notes = []
    for kind, name in [("lora", u.name) for u in extras.loras] + [("embedding", t) for t in extras.triggers]:
        shown = name if kind == "lora" else f"<{name}>"
        try:
            file = shell.library.find(kind, name) if kind == "lora" else find_embedding(shell.library, name)
        except ModelError:
            folders = ", ".join(str(d) for d in shell.library.dirs[kind])
            notes.append(f"note: {KIND_WORDS[kind]} {shown} is not in {folders}; the command needs it")
            continue
        digest = hashes.get((kind, file.name))
        if digest:
            sha256, short = shell.library.hashes(file)
            if digest not in (sha256, short) and not (len(digest) < 64 and short.startswith(digest)):
                notes.append(f"note: {KIND_WORDS[kind]} {shown} here ({file.path}) is not the file the image was "
                             f"made with (hash {short} here, {digest[:12]} in the image)")
    return notes
