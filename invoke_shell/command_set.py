"""The shell's `!` commands: the tables of the command modules, joined."""

from __future__ import annotations

from . import (adapter_commands, commands, compare_commands, fix_commands, history_commands, model_commands,
               picture_commands, postprocess_commands)
from .command_table import CommandTable


def default_commands() -> CommandTable:
    return CommandTable.joined(commands.COMMANDS, history_commands.COMMANDS, model_commands.COMMANDS,
                              adapter_commands.COMMANDS, fix_commands.COMMANDS, compare_commands.COMMANDS,
                              picture_commands.COMMANDS, postprocess_commands.COMMANDS)
