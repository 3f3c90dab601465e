"""History commands: !history [N], !search TEXT, !clear, and !NN (handled by the shell's dispatch)."""

from __future__ import annotations

from .command_table import CommandTable
from .errors import ParseError, ShellError
from .questions import confirm
from .switch_values import shown_value

COMMANDS = CommandTable()
command = COMMANDS.command


def _history(shell):
    if shell.history is None:
        raise ShellError("there is no command history outside the interactive prompt")
    return shell.history


def _show(shell, numbered: list[tuple[int, str]]) -> None:
    for number, entry in numbered:
        shell.say(f"[{number}] {entry}")


@command("!history", usage="!history [N]", help="list the history (the last N entries)")
def show_history(shell, argument: str) -> None:
    entries = list(enumerate(_history(shell).entries(), 1))
    if argument:
        if not argument.isdigit() or int(argument) == 0:
            raise ParseError(f"!history takes a positive number of entries, got {shown_value(argument)}")
        entries = entries[-int(argument):]
    _show(shell, entries)


@command("!search", usage="!search TEXT", help="list history entries containing TEXT (any case)")
def search_history(shell, argument: str) -> None:
    if not argument:
        raise ParseError("!search needs some text: !search TEXT")
    needle = argument.lower()
    _show(shell, [(n, e) for n, e in enumerate(_history(shell).entries(), 1)
                  if needle in e.lower() and not e.startswith("!search")])


@command("!clear", usage="!clear", help="clear the history (asks first)")
def clear_history(shell, argument: str) -> None:
    history = _history(shell)
    if argument not in ("", "--yes"):
        raise ParseError(f"!clear takes no argument but --yes, got {shown_value(argument)}")
    if not confirm(shell, "clear the whole history?", argument == "--yes"):
        shell.say("history kept")
        return
    history.clear()
    shell.say("history cleared")


def recall(shell, number: int) -> None:
    """`!NN`: put history entry NN on the prompt line for editing (not run)."""
    entries = _history(shell).entries()
    if not entries:
        raise ParseError(f"!{number}: the history is empty")
    if not 1 <= number <= len(entries):
        raise ParseError(f"!{number}: the history has entries 1 to {len(entries)}")
    shell.prefill = entries[number - 1]
