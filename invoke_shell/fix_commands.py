"""`!fix FILE [switches] [--new_prompt "..."]`: InvokeAI 2.3's command for working on a picture already made:
outpaint it (-c/--outcrop, -D, --force_outpaint), embiggen it (--embiggen), enlarge and refine it
(--hires_fix with -W/-H), with the prompt, seed, steps, guidance and sampler its PNG records (or a new prompt).
It runs as the generation command it stands for: `"<its prompt>" -s .. -S .. -C .. -A .. -I FILE <switches>`,
shown before it runs, so the new PNG records a command that `!fetch` rebuilds and `!verify` replays; its
sd-metadata lists the tools in 2.3's `postprocessing` form. With only -U/-G it restores and enlarges the picture
itself (postprocess_commands.py). The file's metadata is read as data."""

from __future__ import annotations

import shlex

from .command_table import CommandTable, split_words
from .errors import ParseError
from .paths import in_outdir
from .postprocess_commands import fix_picture, postprocessing_only
from .request import Defaults, GenerationRequest, parse, to_command

COMMANDS = CommandTable()
command = COMMANDS.command

# what a fixed picture keeps of the command that made it: how it was drawn, not what was done to it then
KEPT = ("steps", "cfg_scale", "sampler", "seed", "clip_skip", "skip_normalize", "karras_max", "precision")
TOOLS = ("-c/--outcrop, -D/--out_direction, --force_outpaint, --embiggen, --hires_fix (with -W/-H), "
         "-U/--upscale or -G/--facetool_strength")


def split_fix(argument: str) -> tuple[str, list[str], str | None]:
    """(FILE, the switches, the --new_prompt text or None) of a !fix line."""
    words = split_words("!fix", argument)
    if not words:
        raise ParseError(f'!fix needs a picture and what to do: !fix FILE -c top 64 (or {TOOLS}; --new_prompt "...")')
    path, rest, new_prompt, switches = words[0], words[1:], None, []
    i = 0
    while i < len(rest):
        word = rest[i]
        if word == "--new_prompt" or word.startswith("--new_prompt="):
            if "=" in word:
                new_prompt = word.partition("=")[2]
            elif i + 1 < len(rest):
                new_prompt, i = rest[i + 1], i + 1
            if not new_prompt or not new_prompt.strip():
                raise ParseError('!fix: --new_prompt needs the prompt, quoted: --new_prompt "a red star"')
        else:
            switches.append(word)
        i += 1
    return path, switches, new_prompt


def fix_line(path: str, switches: list[str], new_prompt: str | None, recorded: str | None, defaults=None) -> str:
    """The generation command a !fix stands for (`defaults`: the session's, for a picture that records none)."""
    if recorded is None and new_prompt is None:
        raise ParseError(f'!fix: {path} records no command to work from; give --new_prompt "..." (and -S SEED)')
    kept = {}
    if recorded is not None:
        base = parse(recorded)
        kept = {name: getattr(base, name) for name in KEPT if getattr(base, name) not in (None, False)}
        prompt = base.prompt if new_prompt is None else new_prompt
    else:
        prompt = new_prompt
    defaults = defaults or Defaults()
    base_line = to_command(GenerationRequest(prompt=prompt, **{"steps": defaults.steps, "cfg_scale": defaults.cfg_scale,
                                                               "sampler": defaults.sampler, **kept}))
    return " ".join([base_line, "-I", shlex.quote(path)] + [shlex.quote(s) for s in switches])


@command("!fix", usage='!fix FILE [switches] [--new_prompt "..."]', completes="image",
         help="work on a picture already made, with the prompt and seed its PNG records: outpaint (-c top 64), "
              "embiggen (--embiggen 2), enlarge and refine (--hires_fix -W 1024 -H 1024); or restore its faces "
              "(-G 0.8) and enlarge it (-U 2) as it is")
def fix(shell, argument: str) -> None:
    from .outputs.fetch import NoMetadata, read_png

    path, switches, new_prompt = split_fix(argument)
    path = in_outdir(path, shell.outdir)  # a bare name from the output folder, as 2.3 took it
    if not switches:
        raise ParseError(f"!fix {path}: say what to do: {TOOLS}")
    try:
        recorded = read_png(path).command
    except NoMetadata:
        recorded = None
    if postprocessing_only(switches):
        if new_prompt is not None:
            raise ParseError("!fix: -U and -G work on the picture as it is; --new_prompt is for the tools that "
                             "paint (-c, -D, --force_outpaint, --embiggen, --hires_fix)")
        fix_picture(shell, path, switches, recorded)
        return
    line = fix_line(path, switches, new_prompt, recorded, shell.defaults)
    request = parse(line, shell.defaults)  # a mistake in the switches is told before anything runs
    if not (request.outcrop or request.out_direction or request.force_outpaint or request.embiggen
            or request.hires_fix):
        raise ParseError(f"!fix {path}: say what to do: {TOOLS}; to redraw it, use !fetch")
    shell.say(f"!fix runs: {line}")
    shell.generate(line)
