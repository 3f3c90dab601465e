"""The general `!` commands: help, fetch, verify, replay, models, switch, schedule, quit (COMMANDS)."""

from __future__ import annotations

from .command_table import CommandTable


COMMANDS = CommandTable()
command = COMMANDS.command


# ---- the commands ----

def _help(shell, argument: str) -> None:
    from .samplers import SAMPLER_TABLE
    from .switches import SWITCHES

    lines = ["Type a prompt followed by switches, e.g.  \"fire\" -s 10 -S 1592514025 -W 384 -H 384 -A k_lms",
             "Text in [square brackets] is the negative prompt. In the prompt: (word)1.3, word++, word-;",
             "(\"a\", \"b\").blend(1, 1) and 2.3's a:0.5 b:0.5; (\"a\", \"b\").and(); withLora(name,weight) or "
             "<lora:name:weight>",
             "for a LoRA in loras/ (weight in [-2, 2]); <name> for an embedding in embeddings/ (!triggers lists them).",
             "Switches:"]
    for sw in SWITCHES:
        left = ", ".join(sw.spellings) + (f" {sw.metavar}" if sw.metavar else "")
        extra = f" ({', '.join(sw.choices)})" if sw.choices else (f" {sw.range.describe()}" if sw.range else "")
        lines.append(f"  {left:28} {sw.help}{extra}")
    distilled = [s.name for s in SAMPLER_TABLE if s.distilled]
    lines.append(f"  {'':28} samplers {', '.join(distilled)} need a model distilled for them (or its LoRA): "
                 f"4-8 steps, -C 1 to 2; elsewhere they draw mush")
    lines.append("Commands:")
    for cmd in shell.commands.unique():
        aliases = f" (also {', '.join(cmd.aliases)})" if cmd.aliases else ""
        lines.append(f"  {cmd.usage:28} {cmd.help}{aliases}")
    lines.append("  !NN                          put history entry NN on the prompt line to edit (!history lists them)")
    lines.append("  q, Ctrl-D                    leave the shell; Ctrl-C cancels a line or a running generation")
    shell.say("\n".join(lines))


command("!help", "!h", usage="!help", help="this list of switches and commands")(_help)


@command("!fetch", usage="!fetch FILE | GLOB OUTFILE", completes="image",
         help="put the command that made a PNG (this shell, InvokeAI 2/3, AUTOMATIC1111, ComfyUI) on the next "
              "prompt line; with OUTFILE, write the commands of all matching PNGs to a file for !replay")
def _fetch(shell, argument: str) -> None:
    from .errors import ParseError
    from .adapter_commands import missing_or_changed
    from .postprocess_commands import changed_tools
    from .outputs.fetch import differences_line, fetch_one, fetch_to_file, split_argument
    from .paths import in_outdir

    if not argument:
        raise ParseError("!fetch needs a PNG file: !fetch FILE")
    pattern, outfile = split_argument(argument)
    pattern = in_outdir(pattern, shell.outdir)  # a bare name from the output folder, as 2.3 took it
    plain = shell.manager.plain_precision()
    if outfile is not None:  # !fetch GLOB OUTFILE: every match's command into a file for !replay
        shell.say(fetch_to_file(pattern, outfile, plain))
        return
    rebuilt = fetch_one(pattern)
    shell.prefill = rebuilt.replay_command(plain)
    shell.say(f"fetched{f' ({rebuilt.family})' if rebuilt.family else ''}: {shell.prefill}")
    if rebuilt.made is not None:
        shell.say(f"made with: {rebuilt.made.describe()}")
        differences = differences_line(rebuilt.made, shell.manager.device)
        if differences is not None:
            shell.say(differences)
    for note in missing_or_changed(shell, rebuilt.command, rebuilt.weights) + changed_tools(
            shell, rebuilt.command, rebuilt.weights):
        shell.say(note)
    if rebuilt.notes:
        shell.say(rebuilt.notes_line)
    for line in rebuilt.changed_inputs():
        shell.say(line)


@command("!verify", usage="!verify FILE|GLOB [...] [--keep] [--precision TYPE]", completes="image",
         help="re-run the command of each PNG and say whether the pixels are identical, and if not what differs; "
              "--keep writes each re-run beside its original")
def _verify(shell, argument: str) -> None:
    from .verify import verify

    verify(shell, argument)


@command("!replay", usage="!replay FILE", help="run the commands in a text file", completes="text_file")
def _replay(shell, argument: str) -> None:
    from .errors import ParseError, ShellError
    from .commandfile import read_command_file

    if not argument:
        raise ParseError("!replay needs a command file: !replay FILE")
    if shell.replay_depth >= 8:
        raise ShellError("!replay: files replay each other more than 8 deep; stopping")
    path = _unquote(argument)
    lines = read_command_file(path)
    shell.replay_depth += 1
    try:
        tally = shell.run(lines, source=path)
    finally:
        shell.replay_depth -= 1
    shell.say(f"replayed {path}: {tally.ran} ran, {tally.failed} failed")
    if tally.failed:
        raise ShellError(f"!replay {path}: {tally.failed} of {tally.ran} lines failed")


@command("!models", usage="!models",
         help="list the models in models.yaml (a loaded one with its family and its precision and why), then "
              "the upscalers, face restorers and text-mask models")
def _models(shell, argument: str) -> None:
    manager = shell.manager
    active = manager.active.name if manager.active else None
    for entry in (e for e in manager.registry.entries if not e.is_tool):
        loaded = manager.cached(entry.name)
        if entry.name == active:
            status = "active"
        elif entry.name == shell.loading_model:
            status = "loading"
        else:
            status = "cached" if loaded is not None else "not loaded"
        runs_in = f" [{loaded.family.key}] {loaded.pick.describe()}" if loaded is not None else ""
        shell.say(f"{entry.name:20} {status:10} {entry.format:9} {entry.description}{runs_in}".rstrip())
    _tools(shell)


def _tools(shell) -> None:
    """!models' second part: the post-processing models, by kind, the default of each marked."""
    from .models.tools import WORDS, find

    registry = shell.manager.registry
    for fmt, word in WORDS.items():
        entries = registry.of_format(fmt)
        if entries:
            shell.say(f"{word}s:")
        for entry in entries:
            status = "cached" if entry.name in shell.manager.tools.cached_names() else "not loaded"
            mark = " (default)" if entry == find(registry, fmt) else ""
            shell.say(f"  {entry.name:18} {status:10} {entry.path}{mark} {entry.description}".rstrip())


@command("!switch", usage="!switch NAME", help="make another model active", completes="model")
def _switch(shell, argument: str) -> None:
    from .errors import ParseError

    if not argument:
        raise ParseError("!switch needs a model name; !models lists them")
    shell.model()  # finish any background load first
    manager = shell.manager
    if manager.registry.get(argument).is_tool:
        raise ParseError(f"!switch {argument}: that is a post-processing model "
                         f"(format: {manager.registry.get(argument).format}); !switch takes a model that draws")
    if not manager.is_cached(argument):
        shell.say(f"loading model {argument}...")
    model = manager.activate(argument)
    shell.say(f"active model: {model.name} on {manager.device}")


@command("!schedule", usage="!schedule COMMAND", help="show what a command would run, without running a model")
def _schedule(shell, argument: str) -> None:
    from .engine.schedule import compensated_steps, describe, plan
    from .errors import ParseError
    from .request import parse
    from .samplers import with_karras_max

    if not argument:
        raise ParseError('!schedule needs a command: !schedule "fire" -s 10 -I sketch.png -f 0.7')
    request = parse(argument, shell.defaults)
    strength = request.strength if request.is_img2img else None
    steps = request.steps
    if request.compensate_steps and strength is not None:
        steps = compensated_steps(request.steps, strength)
    config = shell.model().sampler_config
    schedule = plan(with_karras_max(request.sampler, steps, request.karras_max), steps, strength, config)
    for line in describe(schedule, request.steps if request.compensate_steps else None):
        shell.say(line)


@command("!dream", usage="!dream COMMAND", help="run a generation command (InvokeAI 2.x's spelling; the same as "
                                                    "typing the command)")
def _dream(shell, argument: str) -> None:
    from .errors import ParseError

    if not argument.strip():
        raise ParseError('!dream needs a command: !dream "fire" -s 10')
    shell.generate(argument)


@command("!quit", "!exit", usage="!quit", help="leave the shell (also q or Ctrl-D)")
def _quit(shell, argument: str) -> None:
    from .errors import Quit

    raise Quit


def _unquote(text: str) -> str:
    """A file argument, quoted or not ("my pics/a.png" or my pics/a.png)."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text
