"""The REPL: one loop with one error boundary. Typed input, `!replay` and `--from_file` all go
through `run(lines)`."""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Callable, Iterable

from . import generation
from .command_set import default_commands
from .command_table import CommandTable
from .errors import ModelError, ParseError, Quit, ShellError
from .generation import Output
from .history_commands import recall as recall_entry
from .models.library import Library
from .picture_commands import show_outputs
from .request import Defaults, parse

log = logging.getLogger(__name__)

PROMPT = "invoke> "


@dataclass
class Tally:
    ran: int = 0
    failed: int = 0
    images: int = 0


class Shell:
    def __init__(self, manager, *, defaults: Defaults = Defaults(), outdir: str = "outputs",
                 model: str | None = None, log_path: str | None = None, say: Callable[[str], None] = print,
                 commands: CommandTable | None = None, library: Library | None = None):
        self.manager = manager
        # the LoRA and embedding folders: loras/ and embeddings/ beside models.yaml unless given
        self.library = library if library is not None else Library.beside(manager.registry.source)
        self.commands = commands if commands is not None else default_commands()  # the `!` commands
        self.defaults = defaults
        self.outdir = outdir
        self.log_path = log_path
        self.say = say
        self.previous: list[Output] = []   # the images of the previous generation command
        self.seeds: list[int] = []         # every seed this session used, oldest first
        self.prefill = ""                  # text put on the next prompt line (!fetch)
        self.replay_depth = 0
        self.ask: Callable[[str, str], str] | None = None  # (question, default) -> answer, when interactive
        self.history = None                                  # a ShellHistory, when interactive
        self.preview = "inline"                              # pictures after each command (pictures.MODES)
        self.draw: Callable[[str], None] | None = None       # writes to the terminal, when the output is one
        self._model_name = model or manager.registry.default().name
        self._loader: threading.Thread | None = None
        self._load_error: BaseException | None = None

    # ---- the model, loaded in the background so the prompt appears at once ----
    def start_loading(self) -> None:
        active = self.manager.active
        if active is not None and active.name == self._model_name:
            return  # already resident and active

        def load() -> None:
            try:
                self.manager.activate(self._model_name)
            except BaseException as exc:  # reported by the first command that needs the model
                self._load_error = exc

        self._loader = threading.Thread(target=load, name="model-loader", daemon=True)
        self._loader.start()

    @property
    def loading_model(self) -> str | None:
        """The model loading in the background, if any."""
        return self._model_name if self._loader is not None and self._loader.is_alive() else None

    def model(self, precision: str | None = None):
        """The active model (in `precision`, None: the session's), waiting for the background load if it is
        still running."""
        if self._loader is not None:
            if self._loader.is_alive():
                self.say(f"waiting for model {self._model_name} to load...")
                while self._loader.is_alive():
                    self._loader.join(0.1)  # short joins keep Ctrl-C responsive
            self._loader = None
            if self._load_error is not None:
                error, self._load_error = self._load_error, None
                if isinstance(error, ShellError):
                    raise error
                raise ModelError(f"model {self._model_name!r} failed to load: {error}") from error
        active = self.manager.active
        if active is None or precision is not None and not self.manager.serves(active, precision):
            if active is not None:
                self.say(f"loading model {active.name} in {precision}...")
            self.manager.activate(active.name if active is not None else self._model_name, precision)
        elif precision is None and not self.manager.serves(active, self.manager.precision):
            self.manager.activate(active.name)  # back to the session's precision after a --precision line
        return self.manager.active

    def toolbar(self) -> str:
        """The bottom toolbar: active model, device, precision, last seed."""
        manager = self.manager
        if manager.active is not None:
            model = manager.active.name
        else:
            model = f"{self._model_name} (loading)" if self.loading_model else self._model_name
        precision = manager.active.pick.describe() if manager.active is not None else manager.precision
        seed = self.seeds[-1] if self.seeds else "-"
        return f" model: {model} | device: {manager.device or manager.device_request} | precision: {precision} | last seed: {seed}"

    # ---- the loop ----
    def run(self, lines: Iterable[str], source: str | None = None) -> Tally:
        """Run command lines, echoing each as `# source:line  command` when they come from a file. A `q` line
        ends the lines (the file), not the session."""
        return self.run_numbered(enumerate(lines, 1), source)

    def run_numbered(self, lines: Iterable[tuple[int, str]], source: str | None = None) -> Tally:
        """`run` for (line number, line) pairs: a part of a file, echoed with the file's own numbers."""
        tally = Tally()
        for number, raw in lines:
            line = raw.strip()
            if not line or line.startswith(("#", "//")):
                continue
            if source is not None:
                self.say(f"# {source}:{number}  {line}")
            made = len(self.seeds)
            try:
                ok = self.execute(line)
            except Quit:
                break
            tally.ran += 1
            tally.failed += not ok
            tally.images += len(self.seeds) - made
        return tally

    def execute(self, line: str) -> bool:
        """Run one line. The error boundary: a known error prints one line, an unexpected one prints one
        line and goes to the log with its traceback; running out of memory says what to try instead.
        Returns False when the line failed. Raises Quit."""
        out_of_memory = False
        try:
            self._dispatch(line)
            return True
        except ShellError as exc:
            self.say(f"error: {exc}")
        except KeyboardInterrupt:
            self.say("cancelled")
        except Quit:
            raise
        except Exception as exc:
            text = str(exc).strip()
            first = text.splitlines()[0] if text else ""
            where = f" (traceback in {self.log_path})" if self.log_path else ""
            # torch.OutOfMemoryError (CUDA, MPS), MemoryError, and the CPU allocator's RuntimeError
            out_of_memory = isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError" or (
                isinstance(exc, RuntimeError) and re.search(r"out of memory|(not enough|can't allocate) memory",
                                                            text, re.IGNORECASE) is not None)
            if out_of_memory:
                log.exception("out of memory running %r", line)
                asked = re.search(r"allocate ([\d.]+ ?[KMGT]i?B|\d+ bytes)", text, re.IGNORECASE)
                self.say(f"error: out of memory{f' (tried to allocate {asked.group(1)})' if asked else ''}: "
                         f"try a smaller -W/-H, fewer images with -n, or start invoke-shell with --free_gpu_mem"
                         f"{where}")
            else:
                log.exception("unexpected error running %r", line)
                self.say(f"unexpected error: {type(exc).__name__}: {first}{where}")
        if out_of_memory:  # the failed run's tensors are gone with its traceback: give the memory back
            import gc

            gc.collect()
            torch = sys.modules.get("torch")
            if torch is not None and torch.cuda.is_available():
                torch.cuda.empty_cache()
        return False

    def _dispatch(self, line: str) -> None:
        if line in ("q", "quit", "exit"):
            raise Quit
        recall = re.fullmatch(r"!(\d+)", line)
        if recall:
            recall_entry(self, int(recall.group(1)))
            return
        if line.startswith("!"):
            name, _, argument = line.partition(" ")
            cmd = self.commands.get(name)
            if cmd is None:
                raise ParseError(f"unknown command {name!r}; type !help for the list")
            cmd.run(self, argument.strip())
            return
        self.generate(line)

    # ---- generation ----
    def generate(self, line: str) -> None:
        """A generation command (generation.py runs it); the session remembers its images and seeds."""
        made = generation.generate(parse(line, self.defaults), self)
        self.previous = list(made.outputs)
        self.seeds.extend(output.seed for output in made.outputs)
        show_outputs(self, made.outputs)



def interact(shell: Shell, *, input=None, output=None, history_path: str | None = None,
             history_limit: int = 1000, vi_mode: bool = False) -> None:
    """The interactive prompt. Ctrl-C clears the line, Ctrl-D or `q` leaves, Ctrl-R searches the history."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
    from prompt_toolkit.history import InMemoryHistory

    from .completion import ShellCompleter
    from .history import ShellHistory

    history = InMemoryHistory()
    if history_path is not None:
        os.makedirs(os.path.dirname(history_path) or ".", exist_ok=True)
        history = ShellHistory(history_path, history_limit)
        shell.history = history
    completer = ShellCompleter(shell.commands, model_names=lambda: shell.manager.registry.names(),
                               seeds=lambda: list(dict.fromkeys(reversed(shell.seeds))),
                               outdir=lambda: shell.outdir,
                               adapter_names=lambda kind: list(shell.library.files(kind)))
    session = PromptSession(history=history, completer=completer, complete_while_typing=False,
                            auto_suggest=AutoSuggestFromHistory(), enable_history_search=False,
                            bottom_toolbar=shell.toolbar, vi_mode=vi_mode, input=input, output=output)
    questions = PromptSession(input=input, output=output)
    if output is None and sys.stdout.isatty():  # pictures go to the terminal between prompts
        shell.draw = lambda text: (sys.stdout.write(text), sys.stdout.flush())
    shell.ask = lambda question, default: questions.prompt(question, default=default)
    shell.start_loading()
    told = False
    if isinstance(history, ShellHistory):
        history.entries()  # read it now, so that a problem with it is told before the first prompt
    while True:
        if isinstance(history, ShellHistory) and history.problem and not told:
            shell.say(f"warning: {history.problem}")
            told = True
        try:
            line = session.prompt(PROMPT, default=shell.prefill)
        except KeyboardInterrupt:
            continue
        except EOFError:
            break
        shell.prefill = ""
        # Ctrl-C during the command must raise KeyboardInterrupt here. prompt_toolkit puts back, after each
        # prompt, the OS-level SIGINT handler it found when the prompt began, which can be stale when the model
        # was loading in the background thread meanwhile (seen on fresh installs: Ctrl-C then did nothing)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            shell.execute(line.strip())
        except Quit:
            break
