"""The command history: `<outdir>/.invoke_history`, appended line by line (it survives a crash) and capped
at a number of entries, trimmed atomically when loaded."""

from __future__ import annotations

import os
import tempfile

from prompt_toolkit.history import FileHistory

DEFAULT_LIMIT = 1000


class ShellHistory(FileHistory):
    def __init__(self, filename: str, limit: int = DEFAULT_LIMIT):
        super().__init__(filename)
        self.limit = max(1, limit)
        self.problem: str | None = None  # a one-line note for the user when the file could not be used

    def load_history_strings(self):
        try:
            strings = list(super().load_history_strings())  # newest first
        except OSError as exc:
            self.problem = self._set_aside(exc)
            return []
        if len(strings) > self.limit:
            strings = strings[: self.limit]
            self._rewrite(list(reversed(strings)))
        return strings

    def store_string(self, string: str) -> None:
        try:
            super().store_string(string)
        except OSError as exc:  # a full disk or a vanished folder must not end the session
            if self.problem is None:
                self.problem = f"the history could not be saved to {self.filename}: {exc.strerror or exc}"

    def _set_aside(self, exc: OSError) -> str:
        """Keep an unreadable history as a backup and start a new one."""
        backup = f"{self.filename}.bak"
        try:
            os.replace(self.filename, backup)
            return f"the history {self.filename} could not be read ({exc.strerror or exc}); kept it as {backup}"
        except OSError:
            return f"the history {self.filename} could not be read ({exc.strerror or exc}); not saving history"


    def entries(self) -> list[str]:
        """Oldest first, numbered from 1 by `!history` and `!NN`."""
        if not self._loaded:
            self._loaded_strings = list(self.load_history_strings())
            self._loaded = True
        return list(reversed(self._loaded_strings))

    def clear(self) -> None:
        self._rewrite([])
        self._loaded_strings = []
        self._loaded = True

    def _rewrite(self, oldest_first: list[str]) -> None:
        folder = os.path.dirname(os.path.abspath(self.filename))
        fd, tmp = tempfile.mkstemp(prefix=".invoke_history.", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for entry in oldest_first:
                f.write("\n#\n" + "".join(f"+{line}\n" for line in entry.split("\n")))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.filename)
