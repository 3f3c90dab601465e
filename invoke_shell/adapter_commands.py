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
