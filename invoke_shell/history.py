"""The command history: `<outdir>/.invoke_history`, appended line by line (it survives a crash) and capped
at a number of entries, trimmed atomically when loaded."""

from __future__ import annotations

import os
import shutil

from prompt_toolkit.history import FileHistory

from .atomic import write_atomic

DEFAULT_LIMIT = 1000


class ShellHistory(FileHistory):
    def __init__(self, filename: str, limit: int = DEFAULT_LIMIT):
        super().__init__(filename)
        self.limit = max(1, limit)
        self.problem: str | None = None  # a one-line note for the user when the file could not be used

    def load_history_strings(self):
        try:
            damaged = self._damaged_lines()
            strings = list(super().load_history_strings())  # newest first
        except OSError as exc:
            self.problem = self._set_aside(exc)
            return []
        if damaged:
            self.problem = self._keep_copy(damaged, len(strings))
        if damaged or len(strings) > self.limit:
            strings = strings[: self.limit]
            try:
                self._rewrite(list(reversed(strings)))
            except OSError as exc:
                self.problem = self.problem or (f"the history {self.filename} could not be rewritten: "
                                                f"{exc.strerror or exc}")
        return strings

    def _damaged_lines(self) -> int:
        """How many lines of the file are not history (not `#...`, `+...` or empty, or not UTF-8 text)."""
        if not os.path.exists(self.filename):
            return 0
        with open(self.filename, "rb") as f:
            data = f.read()
        damaged = 0
        for line in data.split(b"\n"):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                damaged += 1
                continue
            if b"\x00" in line or line.strip() and not line.startswith((b"#", b"+")):
                damaged += 1
        return damaged

    def _keep_copy(self, damaged: int, entries: int) -> str:
        """Keep a damaged history as a backup; the file itself is rewritten with what could be read."""
        backup = f"{self.filename}.bak"
        try:
            shutil.copyfile(self.filename, backup)
        except OSError as exc:
            return f"the history {self.filename} has {damaged} damaged line(s); no backup ({exc.strerror or exc})"
        return (f"the history {self.filename} had {damaged} damaged line(s); kept a copy as {backup} and "
                f"read {entries} entries from it")

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
        write_atomic(self.filename, "".join("\n#\n" + "".join(f"+{line}\n" for line in entry.split("\n"))
                                            for entry in oldest_first), keep_mode=True)
