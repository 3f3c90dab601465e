"""Split a command file into runs that may go to different processes, and deal the runs out. Pure: no torch.

A run is a stretch of the file that must stay in one process, in file order. The rule:

- A generation command without a back-reference starts a new run, together with the `!` lines
  (and the lines that cannot be parsed) just before it.
- A command with `-S -1` or `-I -1` (any negative back-reference) joins the run before it: it needs
  the previous command's images, which only that process has.
- `!switch NAME` changes the model for every later line. It stays in the file where it is (it runs
  once, in the run it falls in), and every run records the `!switch` targets in force before it, so
  that its process switches to that model first. The worker takes the last of them that loads,
  which is the model a single process would have at that point: a failed `!switch` leaves the one
  before it active.
- Lines whose effects cannot be seen ahead make the whole file one run: `!replay` (its file may
  switch models or make the images a later `-I -1` needs), the commands that change models.yaml,
  any `!` command this module does not know, and a command whose `-I`/`-M` image does not exist
  when the plan is made (an earlier line may be about to write it).
- `q` / `!quit` ends the file there, as it ends a single shell.

The runs are dealt to the processes greedily, heaviest first (estimated work: steps run x images),
each to the least loaded process, ties to the lowest index; each process runs its runs in file order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable

from ..errors import ParseError
from ..request import Defaults, GenerationRequest, parse

QUIT = frozenset({"q", "quit", "exit", "!quit", "!exit"})
# `!` commands that neither make images nor change the model: they may run in any process.
INERT = frozenset({"!help", "!h", "!fetch", "!models", "!schedule", "!history", "!search", "!clear"})
SWITCH = "!switch"
_RECALL = re.compile(r"!\d+")


@dataclass(frozen=True)
class Line:
    number: int   # 1-based, as the echo `# file:N  command` shows it
    text: str


@dataclass(frozen=True)
class Run:
    """Lines that stay together in one process, in order."""

    index: int
    lines: tuple[Line, ...]
    models: tuple[str, ...]  # `!switch` targets in force before the run, oldest first, each name once
    weight: int              # estimated work: steps run x images (at least 1)


@dataclass(frozen=True)
class Plan:
    runs: tuple[Run, ...]
    shares: tuple[tuple[int, ...], ...]  # for each process, the indices of its runs, in file order
    commands: int                        # lines that will run (not comments, not blank, not after q)
    whole_file_reason: str | None = None  # why the file is one run, when it is
    stop: Line | None = None              # the `q` line that ends the file
    unseeded: int = 0                     # generation commands without -S: random seeds in any run

    def share_commands(self, process: int) -> int:
        return sum(len(self.runs[i].lines) for i in self.shares[process])

    def describe(self) -> str:
        """One line: how the work was divided, e.g. `8 commands in 8 independent runs; process 0: 4, process 1: 4`."""
        runs = len(self.runs)
        if self.whole_file_reason is not None:
            head = f"{self.commands} commands in 1 run ({self.whole_file_reason})"
        else:
            head = f"{self.commands} commands in {runs} independent run{'s' * (runs != 1)}"
        parts = []
        for process, share in enumerate(self.shares):
            count = self.share_commands(process)
            runs_note = f" ({len(share)} run{'s' * (len(share) != 1)})" if len(share) != count else ""
            parts.append(f"process {process}: {count}{runs_note}" if share else f"process {process}: idle")
        return head + "; " + ", ".join(parts)


def classify(text: str, defaults: Defaults = Defaults()) -> tuple[str, GenerationRequest | None]:
    """What a (stripped, non-comment) line is: `quit`, `switch`, `inert`, `sequential`, `independent`
    or `dependent`, and its request when it is a generation command that parses."""
    if text in QUIT:
        return "quit", None
    if text.startswith("!"):
        name = text.partition(" ")[0]
        if name == SWITCH:
            return "switch", None
        if name in INERT or _RECALL.fullmatch(name):
            return "inert", None
        return "sequential", None
    try:
        request = parse(text, defaults)
    except ParseError:
        return "inert", None  # fails wherever it runs and changes nothing: no image, no model
    if request.seed_reference is not None or request.init_img_reference is not None:
        return "dependent", request
    return "independent", request


def weight(request: GenerationRequest | None) -> int:
    """Estimated work of a command: the steps that run times the images."""
    if request is None:
        return 0
    steps = request.steps
    if request.is_img2img and not request.compensate_steps:
        steps = max(1, int(steps * request.strength))
    return steps * (request.iterations or 1)


def _missing_image(request: GenerationRequest, exists: Callable[[str], bool]) -> str | None:
    for switch, path in (("-I", request.init_img), ("-M", getattr(request, "init_mask", None))):
        if path is not None and not (switch == "-I" and request.init_img_reference is not None) and not exists(path):
            return f"{switch} {path}"
    return None


def plan(lines: Iterable[str], processes: int, defaults: Defaults = Defaults(),
         exists: Callable[[str], bool] = lambda path: True) -> Plan:
    """Split the lines of a command file into runs and deal them to `processes` processes.
    `exists(path)` says whether an image named by -I/-M exists now."""
    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    groups: list[list[Line]] = []   # the runs being built
    models: list[tuple[str, ...]] = []
    weights: list[int] = []
    pending: list[Line] = []        # `!` lines and unparseable lines waiting for the next command
    chain: tuple[str, ...] = ()     # !switch targets in force after the lines seen so far
    chain_before_pending = chain
    commands = unseeded = 0
    reason = stop = None
    for number, raw in enumerate(lines, 1):
        text = raw.strip()
        if not text or text.startswith(("#", "//")):
            continue
        line = Line(number, text)
        kind, request = classify(text, defaults)
        if kind == "quit":
            stop = line
            break
        commands += 1
        if request is not None and request.seed is None:
            unseeded += 1
        if reason is None:
            if kind == "sequential":
                reason = f"line {number} has {text.partition(' ')[0]}, whose effects cannot be seen ahead"
            elif request is not None and (missing := _missing_image(request, exists)):
                reason = f"line {number}: {missing} does not exist yet; an earlier line may make it (use -I -1)"
        if kind == "independent" or kind == "dependent" and not groups:
            groups.append(pending + [line])
            models.append(chain_before_pending)
            weights.append(weight(request))
        elif kind == "dependent":
            groups[-1].extend(pending + [line])
            weights[-1] += weight(request)
        else:
            if not pending:
                chain_before_pending = chain
            pending.append(line)
            if kind == "switch":
                name = text.partition(" ")[2].strip()
                if name:
                    chain = tuple(m for m in chain if m != name) + (name,)
            continue
        pending, chain_before_pending = [], chain
    if pending:
        if groups:
            groups[-1].extend(pending)
        else:
            groups.append(pending)
            models.append(chain_before_pending)
            weights.append(0)
    if reason is not None and groups:
        groups = [[line for group in groups for line in group]]
        models, weights = [models[0]], [sum(weights)]
    runs = tuple(Run(i, tuple(g), m, max(1, w)) for i, (g, m, w) in enumerate(zip(groups, models, weights)))
    return Plan(runs, deal(runs, processes), commands, reason, stop, unseeded)


def deal(runs: tuple[Run, ...], processes: int) -> tuple[tuple[int, ...], ...]:
    """Greedy, heaviest run first, to the least loaded process (ties: lowest index); deterministic."""
    load = [0] * processes
    shares: list[list[int]] = [[] for _ in range(processes)]
    for run in sorted(runs, key=lambda r: (-r.weight, r.index)):
        process = min(range(processes), key=lambda p: (load[p], p))
        load[process] += run.weight
        shares[process].append(run.index)
    return tuple(tuple(sorted(share)) for share in shares)
