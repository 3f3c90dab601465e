"""The `!` command table: names and aliases are exact. Each command module fills a table of its own; the
shell is handed the joined table (command_set.py) and hands it to the completer, as pgcli hands its special
commands to its completer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator


@dataclass(frozen=True)
class Command:
    name: str
    aliases: tuple[str, ...]
    usage: str
    help: str
    run: Callable          # run(shell, argument_text)
    completes: str = ""    # what the completer offers for the argument: "image", "text_file", "model"


class CommandTable:
    def __init__(self, commands: tuple[Command, ...] = ()):
        self._by_spelling: dict[str, Command] = {}
        for cmd in commands:
            self.add(cmd)

    def add(self, cmd: Command) -> None:
        for spelling in (cmd.name, *cmd.aliases):
            if spelling in self._by_spelling:
                raise ValueError(f"{spelling} is in the command table twice")
            self._by_spelling[spelling] = cmd

    def command(self, name: str, *aliases: str, usage: str, help: str, completes: str = ""):
        """A decorator that adds the function to this table as `name` (and its aliases)."""
        def add(fn: Callable) -> Callable:
            self.add(Command(name, aliases, usage, help, fn, completes))
            return fn

        return add

    def get(self, spelling: str) -> Command | None:
        return self._by_spelling.get(spelling)

    def spellings(self) -> Iterator[tuple[str, Command]]:
        """(spelling, command), sorted by spelling."""
        return iter(sorted(self._by_spelling.items()))

    def unique(self) -> list[Command]:
        """Each command once, in the order added."""
        return list({cmd.name: cmd for cmd in self._by_spelling.values()}.values())

    @classmethod
    def joined(cls, *tables: CommandTable) -> CommandTable:
        return cls(tuple(cmd for table in tables for cmd in table.unique()))


def split_words(command_name: str, argument: str) -> list[str]:
    """A `!` command's argument as shell words; one-line ParseError for unbalanced quotes."""
    import shlex

    from .errors import ParseError

    try:
        return shlex.split(argument)
    except ValueError as exc:
        raise ParseError(f"{command_name}: cannot split the line into words ({str(exc).lower()}): check the "
                         "quotes") from None
