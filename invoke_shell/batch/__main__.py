"""`python -m invoke_shell.batch`: expand a sweep template into a command file, or show how a command file
would be divided between processes. Neither loads a model.

    python -m invoke_shell.batch expand sweep.yaml > cmds.txt
    python -m invoke_shell.batch plan cmds.txt --num_processes 4
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import ShellError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m invoke_shell.batch",
                                     description="Batch rendering helpers (run the file with accelerate launch).")
    sub = parser.add_subparsers(dest="command", required=True)
    expand = sub.add_parser("expand", help="write the commands of a YAML/JSON sweep template")
    expand.add_argument("template", help="the template (.yaml, .yml or .json)")
    expand.add_argument("-o", "--output", help="write to this file instead of standard output")
    show = sub.add_parser("plan", help="show how a command file would be divided between processes")
    show.add_argument("file", help="the command file")
    show.add_argument("-n", "--num_processes", type=int, default=2, metavar="N", help="processes (default 2)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "expand":
            from .template import expand, header, load

            template = load(args.template)
            lines = expand(template, args.template)
            text = "\n".join([header(args.template, template, len(lines)), *lines]) + "\n"
            if args.output:
                with open(args.output, "w", encoding="utf-8") as f:
                    f.write(text)
                print(f"{args.output}: {len(lines)} commands", file=sys.stderr)
            else:
                sys.stdout.write(text)
            return 0
        from ..commandfile import read_command_file
        from .split import plan

        if args.num_processes < 1:
            raise ShellError(f"--num_processes must be at least 1, got {args.num_processes}")
        made = plan(read_command_file(args.file), args.num_processes, exists=os.path.exists)
        print(made.describe())
        for process, share in enumerate(made.shares):
            numbers = [line.number for i in share for line in made.runs[i].lines]
            print(f"  process {process}: lines {_ranges(numbers) or '-'}")
        if made.stop is not None:
            print(f"  line {made.stop.number} ({made.stop.text}) ends the file; the lines after it do not run")
        return 0
    except ShellError as exc:
        print(f"invoke-shell batch: {exc}", file=sys.stderr)
        return 2


def _ranges(numbers: list[int]) -> str:
    """`1-3, 5, 7-8`"""
    parts: list[str] = []
    for n in numbers:
        if parts and isinstance(parts[-1], list) and parts[-1][1] == n - 1:
            parts[-1][1] = n
        else:
            parts.append([n, n])
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in parts)


if __name__ == "__main__":
    sys.exit(main())
