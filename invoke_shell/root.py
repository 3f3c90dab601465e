"""Coming home from InvokeAI 2.3: its root folder and its launch spellings. `--root_dir DIR` (or `--root`, or
$INVOKEAI_ROOT) uses 2.3's layout as it is: DIR/invokeai.init holds launch options, one or more per line as
2.3 wrote them (`--outdir="/home/me/invokeai/outputs"`); DIR/configs/models.yaml, DIR/outputs,
DIR/embeddings and DIR/loras are the defaults. 2.3's launch options that mean something here are accepted
(see __main__.py); those that mean nothing now are named in one line with what to use instead: on the command
line that line stops the launch, in invokeai.init it is a note and the option is skipped. Nothing here
imports torch."""

from __future__ import annotations

import os
import shlex

INIT_NAME = "invokeai.init"
ROOT_OPTIONS = ("--root_dir", "--root")
# 2.3's launch options that mean nothing now -> (whether it takes a value, what to use instead)
RETIRED: dict[str, tuple[bool, str]] = {
    "--xformers": (False, "PyTorch's own scaled-dot-product attention is always used"),
    "--no-xformers": (False, "PyTorch's own scaled-dot-product attention is always used"),
    "--nsfw_checker": (False, "no safety checker runs here"),
    "--no-nsfw_checker": (False, "no safety checker runs here"),
    "--patchmatch": (False, "outpainting fills the new area with tiles of the picture (--tile_size)"),
    "--no-patchmatch": (False, "outpainting fills the new area with tiles of the picture (--tile_size)"),
    "--web": (False, "this is the terminal shell; there is no web server"),
    "--gui": (False, "this is the terminal shell; there is no web server"),
    "--host": (True, "this is the terminal shell; there is no web server"),
    "--port": (True, "this is the terminal shell; there is no web server"),
    "--cors": (True, "this is the terminal shell; there is no web server"),
    "--autoimport": (True, "!import_model DIR imports a folder of models"),
    "--autoconvert": (True, "!import_model DIR, then !convert_model NAME"),
    "--ckpt_convert": (False, "single files load as they are; !convert_model makes a diffusers folder"),
    "--no-ckpt_convert": (False, "single files load as they are; !convert_model makes a diffusers folder"),
    "--sequential_guidance": (False, "--free_gpu_mem sequential keeps memory lowest"),
    "--internet": (False, "nothing is downloaded here; models are files on disk"),
    "--no-internet": (False, "nothing is downloaded here; models are files on disk"),
    "--no_restore": (False, "face restoration runs only when -G asks for it"),
    "--no_esrgan": (False, "upscaling runs only when -U asks for it"),
    "--gfpgan_model_path": (True, "face restorers are models.yaml stanzas (format: facetool)"),
    "--esrgan_bg_tile": (True, "upscalers are models.yaml stanzas (format: upscaler)"),
    "--prompt_as_dir": (False, "--fnformat names the files ({prompt} is a placeholder)"),
    "-p": (False, "--fnformat names the files ({prompt} is a placeholder)"),
}


class LaunchError(Exception):
    """A launch option that cannot be used: the message is one line."""


def root_of(argv: list[str], environ) -> str | None:
    """The 2.3 root the command line (`--root_dir DIR`, `--root=DIR`) or $INVOKEAI_ROOT names, if any."""
    for i, word in enumerate(argv):
        name, eq, value = word.partition("=")
        if name in ROOT_OPTIONS or len(name) > len("--root") and "--root_dir".startswith(name):  # argparse's prefixes
            if eq:
                return value
            if i + 1 < len(argv):
                return argv[i + 1]
            raise LaunchError(f"{name} needs a folder: {name} ~/invokeai")
    return environ.get("INVOKEAI_ROOT") or None


def init_words(root: str) -> list[str]:
    """The launch options in ROOT/invokeai.init (2.3's: `--name=value` lines, `#` comments), with relative
    paths taken from ROOT."""
    path = os.path.join(root, INIT_NAME)
    if not os.path.isfile(path):
        return []
    words: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            try:
                words += shlex.split(line, comments=True)
            except ValueError as exc:
                raise LaunchError(f"{path}:{number}: cannot read the line ({str(exc).lower()})") from None
    rooted = []
    for i, word in enumerate(words):  # `--outdir=outputs` and `--outdir outputs` alike
        follows_path_option = i > 0 and words[i - 1] in PATH_OPTIONS and not word.startswith("-")
        rooted.append(_under(word, root) if follows_path_option else _rooted(word, root))
    return rooted


PATH_OPTIONS = ("--outdir", "-o", "--conf", "--config", "-c", "--embedding_path", "--embedding_directory",
                "--lora_directory")


def _rooted(word: str, root: str) -> str:
    name, eq, value = word.partition("=")
    if eq and name in PATH_OPTIONS and value:
        return f"{name}={_under(value, root)}"
    return word


def _under(path: str, root: str) -> str:
    return path if os.path.isabs(os.path.expanduser(path)) else os.path.join(root, path)


def without_retired(words: list[str], where: str, notes: list[str]) -> list[str]:
    """`words` without 2.3's options that mean nothing now. From the command line (`where` == "") each is a
    LaunchError; from invokeai.init each becomes a note and is skipped."""
    kept = []
    i = 0
    while i < len(words):
        name, eq, _ = words[i].partition("=")
        if name in RETIRED:
            takes_value, instead = RETIRED[name]
            message = f"{name} (InvokeAI 2.3) means nothing here: {instead}"
            if not where:
                raise LaunchError(f"{message}; drop it")
            notes.append(f"{where}: {message}; skipped")
            i += 1 + (takes_value and not eq and i + 1 < len(words))
            continue
        kept.append(words[i])
        i += 1
    return kept


def expanded(argv: list[str], environ) -> tuple[list[str], list[str], str | None]:
    """(the launch words with a 2.3 root's defaults and invokeai.init before the command line's own, the
    notes to show, the root or None)."""
    notes: list[str] = []
    argv = without_retired(argv, "", notes)
    root = root_of(argv, environ)
    if root is None:
        return argv, notes, None
    root = os.path.expanduser(root)
    if not os.path.isdir(root):
        raise LaunchError(f"--root_dir {root}: no such folder")
    defaults = [f"--outdir={os.path.join(root, 'outputs')}"]
    for option, relative in (("--conf", os.path.join("configs", "models.yaml")),
                             ("--embedding_path", "embeddings"), ("--lora_directory", "loras")):
        if os.path.exists(os.path.join(root, relative)):
            defaults.append(f"{option}={os.path.join(root, relative)}")
    init = without_retired(init_words(root), os.path.join(root, INIT_NAME), notes)
    return defaults + init + argv, notes, root


LAST_MODEL = ".last_model"


def last_model(root: str | None) -> str | None:
    """The model used last in this root (2.3's ROOT/.last_model), if recorded."""
    if root is None:
        return None
    try:
        with open(os.path.join(root, LAST_MODEL), encoding="utf-8") as f:
            name = f.read().strip()
    except OSError:
        return None
    return name or None


def remember_model(root: str | None, name: str) -> None:
    if root is None:
        return
    from .atomic import write_atomic

    try:
        write_atomic(os.path.join(root, LAST_MODEL), name + "\n")
    except OSError:
        pass  # a read-only root still works; the next start uses the yaml's default
