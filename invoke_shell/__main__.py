"""`invoke-shell` / `python -m invoke_shell`: launch options -> Shell; interactive, or --from_file."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from . import __version__, root
from .errors import ShellError
from .request import Defaults, parse
from .switch_values import check_value
from .switches import SWITCHES

LOG_NAME = "invoke_shell.log"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="invoke-shell", description="The invoke> shell for Stable Diffusion.")
    for sw in SWITCHES:
        if not sw.launch:
            continue
        if sw.kind == "flag":
            parser.add_argument(*sw.spellings, dest=sw.dest, action="store_true", default=None, help=sw.help)
        else:
            convert = {"int": int, "float": float}.get(sw.kind, str)
            parser.add_argument(*sw.spellings, dest=sw.dest, type=convert, metavar=sw.metavar,
                                choices=sw.choices or None, help=f"default {sw.help}")
    parser.add_argument("-o", "--outdir", default="outputs", help="folder for images, the log and history")
    parser.add_argument("--root_dir", "--root", default=None, metavar="DIR",
                        help="an InvokeAI 2.3 root folder (or $INVOKEAI_ROOT): its invokeai.init, configs/models.yaml, "
                             "outputs/, embeddings/ and loras/")
    parser.add_argument("--always_use_cpu", action="store_true", help="InvokeAI 2.3's: the same as --device cpu")
    parser.add_argument("-F", "--full_precision", action="store_true",
                        help="InvokeAI 2.3's: the same as --precision float32")
    parser.add_argument("-c", "--conf", "--config", default=None,
                        help="models.yaml to use (default: ./models.yaml; without one, the built-in model, and "
                             "!import_model writes ./models.yaml)")
    parser.add_argument("--model", default=None, help="model to start with (default: the yaml's default)")
    parser.add_argument("--lora_directory", metavar="DIR", default=None,
                        help="folder of LoRA files (default: loras/ beside models.yaml)")
    parser.add_argument("--embedding_path", "--embedding_directory", dest="embedding_path", metavar="DIR",
                        default=None, help="folder of textual-inversion embeddings (default: embeddings/ beside "
                                           "models.yaml)")
    parser.add_argument("--from_file", metavar="PATH|-", help="run the commands in a file (or stdin), then exit")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    parser.add_argument("--max_loaded_models", type=int, default=2, metavar="N",
                        help="models kept in memory, the active one included (default 2)")
    parser.add_argument("--free_gpu_mem", nargs="?", const="model", choices=("model", "sequential"), default=None,
                        help="offload through accelerate: whole sub-models (default) or sequentially, layer by layer")
    parser.add_argument("--history_size", type=int, default=1000, metavar="N",
                        help="entries kept in <outdir>/.invoke_history (default 1000)")
    parser.add_argument("--edit_mode", choices=("emacs", "vi"), default="emacs", help="line-editing keys")
    parser.add_argument("--preview", choices=("inline", "blocks", "off"), default="inline",
                        help="pictures in the terminal after each command: inline (the terminal's own image "
                             "protocol, else half-blocks), blocks, off (default inline)")
    parser.add_argument("--version", action="version", version=f"invoke-shell {__version__}")
    return parser


def launch_defaults(args: argparse.Namespace) -> Defaults:
    values = {}
    for sw in SWITCHES:
        value = getattr(args, sw.dest, None) if sw.launch else None
        if value is not None:
            check_value(sw, value)
            values[sw.dest] = value
    return Defaults(**values)


def setup_logging(path: str) -> None:
    """The diagnostic log: tracebacks of unexpected errors, and library warnings (which would otherwise
    print their own lines at the prompt), go to `path`."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)


def remember(root_dir: str | None, manager) -> None:
    """The model active at the end, for the next start in this 2.3 root (its .last_model)."""
    if manager.active is not None:
        root.remember_model(root_dir, manager.active.name)


def main(argv: list[str] | None = None) -> int:
    from .models.library import Library
    from .models.manager import ModelManager
    from .models.registry import load_registry
    from .commandfile import read_command_file
    from .shell import Shell, interact

    parser = build_parser()
    try:
        words, notes, root_dir = root.expanded(list(sys.argv[1:] if argv is None else argv), os.environ)
    except root.LaunchError as exc:
        print(f"invoke-shell: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(words)
    for note in notes:
        print(f"note: {note}")
    if args.always_use_cpu:
        args.device = "cpu"
    if args.full_precision:
        args.precision = "float32"
    try:
        defaults = launch_defaults(args)
        parse('"a launch check"', defaults)  # what the defaults make together (a --fnformat template) is told now
        registry = load_registry(args.conf or "models.yaml", missing_ok=args.conf is None)
        if args.model is not None:
            registry.get(args.model)
        elif root.last_model(root_dir) in registry.names():  # 2.3's .last_model
            args.model = root.last_model(root_dir)
        log_path = os.path.join(args.outdir, LOG_NAME)
        try:  # only once the launch options are known good is anything written
            os.makedirs(args.outdir, exist_ok=True)
            setup_logging(log_path)
        except OSError as exc:
            raise ShellError(f"--outdir {args.outdir}: cannot write there ({exc.strerror or exc})") from None
        manager = ModelManager(registry, device=args.device, precision=defaults.precision,
                               max_loaded=args.max_loaded_models, offload=args.free_gpu_mem)
        library = Library.beside(registry.source, args.lora_directory, args.embedding_path)
        for option, folder in (("--lora_directory", args.lora_directory), ("--embedding_path", args.embedding_path)):
            if folder is not None and not os.path.isdir(folder):
                raise ShellError(f"{option} {folder}: no such folder")
        shell = Shell(manager, defaults=defaults, outdir=args.outdir, model=args.model, log_path=log_path,
                      library=library)
        shell.preview = args.preview
        source = args.from_file if args.from_file is not None else (None if sys.stdin.isatty() else "-")
        from . import batch
        if batch.launched():  # started by `accelerate launch`: this process runs its share of the file
            return batch.run(shell, source, args)
        if source is None:
            interact(shell, history_path=os.path.join(args.outdir, ".invoke_history"),
                     history_limit=args.history_size, vi_mode=args.edit_mode == "vi")
            remember(root_dir, manager)
            return 0
        lines = read_command_file(source)
    except ShellError as exc:
        print(f"invoke-shell: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C while starting: leave quietly, as a shell does
        return 130
    shell.start_loading()
    tally = shell.run(lines, source="stdin" if source == "-" else source)
    remember(root_dir, manager)
    print(f"{tally.ran} ran, {tally.failed} failed")
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
