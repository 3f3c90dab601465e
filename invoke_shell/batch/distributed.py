"""`accelerate launch -m invoke_shell --from_file FILE`: each process runs its share of the file's runs
(see split.py) on its own device with its own resident model, and the main process prints a summary.

The main process reads the file and makes the plan, then sends it to the others, so every process
works from the same plan even when the nodes see different files. Images go to the one outdir; the
prefix counter there is locked across processes. A command's image depends only on the command (its
seed's noise is drawn on the CPU), so it is the image one process would make, whichever process runs
it; commands without -S draw a random seed, as they do in one process.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from datetime import timedelta

from ..errors import ShellError
from .split import Plan, Run, plan

log = logging.getLogger(__name__)

# The processes meet again only at the end, to gather the tallies; a process whose share finishes
# early waits there for the others, for as long as an overnight batch takes.
COLLECTIVE_TIMEOUT = timedelta(days=7)


@dataclass(frozen=True)
class Share:
    """What one process did: sent to the main process for the summary."""

    process: int
    device: str
    runs: int
    ran: int
    failed: int
    images: int
    seconds: float


def _flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def _state(device_request: str):
    """accelerate's PartialState: this process's index, the number of processes and its device (on CUDA,
    local index modulo the GPUs, made current). On a machine without CUDA (or with --device cpu) it must
    be told to use the CPU, or each process would think it is alone. The processes exchange only the
    plan and the tallies, so gloo serves everywhere, and unlike NCCL it lets processes share a GPU."""
    import torch
    from accelerate import PartialState

    cpu = device_request == "cpu" or _flag("ACCELERATE_USE_CPU") or not torch.cuda.is_available()
    return PartialState(cpu=cpu, backend="gloo", timeout=COLLECTIVE_TIMEOUT)


def _finish(state) -> None:
    """Leave the process group together: every process waits until all have finished their collectives,
    so that none tears its connections down while another still talks to it."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()  # on gloo this runs on the CPU; accelerate's wait_for_everyone would name a GPU
    state.destroy_process_group()


def _printer(prefix: str):
    def say(text: str) -> None:
        print("\n".join(prefix + line for line in str(text).split("\n")), flush=True)

    return say


def _enter(shell, run: Run, launch_model: str) -> None:
    """Make the model in force at the start of `run` active: the last of its `!switch` targets that
    loads (a failed !switch leaves the one before it active), else the launch model. The
    back-references of a run never reach into another run."""
    shell.previous = []
    manager = shell.manager
    for name in reversed((launch_model,) + run.models):
        if manager.active is not None and manager.active.name == name:
            return
        try:
            manager.activate(name)
        except Exception:  # the !switch line itself reports it, in the process that runs that line
            log.warning("batch: model %r did not load for run %d", name, run.index, exc_info=True)
            continue
        shell.say(f"active model: {name} on {manager.device}")
        return


def _work(shell, plan_: Plan, mine: tuple[int, ...], source: str, process: int, device: str,
          launch_model: str) -> Share:
    ran = failed = images = 0
    start = time.perf_counter()
    for index in mine:
        run = plan_.runs[index]
        _enter(shell, run, launch_model)
        tally = shell.run_numbered(((line.number, line.text) for line in run.lines), source)
        ran, failed, images = ran + tally.ran, failed + tally.failed, images + tally.images
    return Share(process, device, len(mine), ran, failed, images, time.perf_counter() - start)


def summary(plan_: Plan, shares: list[Share], source: str, seconds: float) -> list[str]:
    """The lines the main process prints at the end."""
    lines = [f"batch {source}: {plan_.describe()}"]
    for s in shares:
        runs = f"{s.runs} run{'s' * (s.runs != 1)}"
        lines.append(f"  process {s.process} ({s.device}): {runs}, {s.ran} ran, {s.failed} failed, "
                     f"{s.images} images, {s.seconds:.1f} s")
    if plan_.stop is not None:
        lines.append(f"  line {plan_.stop.number} ({plan_.stop.text}) ends the file; the lines after it were not run")
    if plan_.unseeded:
        lines.append(f"  note: {plan_.unseeded} command(s) without -S drew random seeds; only commands with "
                     f"-S make the same image in every run")
    ran, failed = sum(s.ran for s in shares), sum(s.failed for s in shares)
    lines.append(f"{ran} ran, {failed} failed, {sum(s.images for s in shares)} images in {seconds:.1f} s "
                 f"on {len(shares)} process{'es' * (len(shares) != 1)}")
    return lines


def run_distributed(shell, source: str | None, args) -> int:
    """Run the command file `source` split between the processes accelerate started. Returns the exit
    status: on the main process 1 if any command failed (2 if the file cannot be read); 0 on the others,
    so that the launcher never stops the main process before its summary is out."""
    from accelerate.utils import broadcast_object_list, gather_object

    from ..commandfile import read_command_file

    if source in (None, "-"):
        print("invoke-shell: under accelerate launch, give the commands with --from_file FILE "
              "(standard input does not reach every process)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    state = _state(args.device)
    if args.device == "auto":
        shell.manager.device_request = state.device.type  # cuda: the device accelerate made current
    payload: Plan | str | None = None
    if state.is_main_process:
        try:
            payload = plan(read_command_file(source), state.num_processes, shell.defaults, exists=os.path.exists)
        except ShellError as exc:
            payload = str(exc)
    payload = broadcast_object_list([payload])[0]
    if isinstance(payload, str):
        if state.is_main_process:
            print(f"invoke-shell: {payload}", file=sys.stderr)
        _finish(state)
        return 2 if state.is_main_process else 0
    many = state.num_processes > 1
    shell.say = _printer(f"[{state.process_index}] " if many else "")
    if state.is_main_process:
        print(f"batch {source}: {payload.describe()}", flush=True)
        if not many and _flag("ACCELERATE_USE_CPU"):
            print("note: accelerate launch --cpu starts one process; for several on the CPU use "
                  "--multi_gpu --num_processes N (see docs/batch.md)", flush=True)
    launch_model = args.model or shell.manager.registry.default().name
    mine = payload.shares[state.process_index]
    device = "cpu" if state.device.type == "cpu" else str(state.device)  # gloo numbers every CPU process cpu:0
    share = _work(shell, payload, mine, source, state.process_index, device, launch_model)
    shares = sorted(gather_object([share]), key=lambda s: s.process)
    status = 0
    if state.is_main_process:
        for line in summary(payload, shares, source, time.perf_counter() - started):
            print(line, flush=True)
        status = 1 if any(s.failed for s in shares) else 0
    _finish(state)
    return status
