"""The shell's own error types. A ShellError's message is one line shown to the user as it is."""


class ShellError(Exception):
    """A problem the user can fix; the shell prints the message and goes on."""


class ParseError(ShellError):
    """A command line that does not parse or validate."""


class ModelError(ShellError):
    """A model that cannot be found, read or loaded."""


class ImageError(ShellError):
    """An image file that cannot be used."""


class Quit(Exception):
    """Raised by `q` / `!quit` to leave the loop (not an error: control flow the loop catches)."""
