"""Rebuilding a command from a PNG's metadata, for `!fetch FILE` and `!fetch GLOB OUTFILE`.
Text from the file is parsed as data, never executed."""

from __future__ import annotations

import glob
import os
import re
import shlex
from dataclasses import dataclass, replace

from ..atomic import write_atomic
from ..errors import ImageError, ParseError, ShellError
from ..request import parse, to_command
from ..switch_values import shown_value
from .metadata import file_sha256
from .pngio import read_text_chunks
from .provenance import Provenance, recorded, recorded_model, recorded_weights
from .readers import FAMILIES
from .readers.common import load_json_object, notes_line, printable


class NoMetadata(ParseError):
    """A readable PNG that carries none of the metadata families."""


@dataclass(frozen=True)
class Rebuilt:
    command: str               # canonical: to_command(parse(...))
    family: str                # "" for this shell's own Dream line, else e.g. "AUTOMATIC1111"
    notes: tuple[str, ...]     # settings with no equivalent here
    inputs: tuple[tuple[str, str, str], ...] = ()  # (switch, path, sha256) of the files it was made from
    made: Provenance | None = None   # precision, device, versions: this shell's PNGs record them
    model: str | None = None         # the model's name and hash, as the file records them
    model_hash: str | None = None
    batch: tuple[tuple[str, ...], int] | None = None  # the commands made in one model pass with it, its index
    weights: tuple[tuple[str, str, str], ...] = ()   # (kind, name, hash) of the LoRAs and embeddings it used

    @property
    def notes_line(self) -> str:
        return notes_line(self.notes)

    def replay_command(self, plain: str | None) -> str:
        """The command that redraws the image: with `--precision` set to the recorded one unless a plain
        line runs in that precision here (`plain`: a type, or None when that is not known without loading)."""
        if self.made is None or self.made.precision == plain:
            return self.command
        request = parse(self.command)
        return self.command if request.precision is not None else to_command(replace(request,
                                                                                      precision=self.made.precision))

    def changed_inputs(self) -> list[str]:
        """A line for each input file (init image, mask) that is gone, or whose bytes are not those the
        image was made from: the fetched command would then fail, or draw another picture."""
        lines = []
        for switch, path, digest in self.inputs:
            shown = printable(path if len(path) <= 300 else path[:299] + "…")
            if not os.path.exists(path):
                lines.append(f"note: {switch} {shown} is not there; the command needs it")
                continue
            if not os.path.isfile(path):  # a FIFO or a device named in the file is never read
                lines.append(f"note: {switch} {shown} is not a regular file")
                continue
            try:
                if os.path.getsize(path) > MAX_HASHED_BYTES:
                    continue
                same = file_sha256(path) == digest
            except OSError:
                continue
            if not same:
                lines.append(f"note: {switch} {shown} has changed since the image was made (its sha256 "
                             f"differs), so the command will not draw the same picture")
        return lines


MAX_HASHED_BYTES = 1 << 28  # a file named in an image's metadata is not read past this to compare it
_RECORDED = (("init_img", "orig_hash", "-I/--init_img"), ("init_mask", "mask_hash", "-M/--init_mask"))
_SHA256 = re.compile(r"[0-9a-f]{64}")


def sd_metadata_of(chunks: dict[str, str]) -> dict:
    """The `sd-metadata` chunk parsed once, as data; {} when there is none or it does not parse."""
    try:
        return load_json_object(chunks["sd-metadata"], "sd-metadata") if "sd-metadata" in chunks else {}
    except ParseError:
        return {}


def recorded_inputs(sd: dict) -> tuple[tuple[str, str, str], ...]:
    """The input files a parsed `sd-metadata` names with their sha256 (InvokeAI 2.x's `orig_hash`, and
    this shell's `mask_hash`), as (switch, path, sha256). Read as data; anything malformed is skipped."""
    image = sd.get("image")
    if not isinstance(image, dict):
        return ()
    return tuple((switch, image[key], image[hash_key]) for key, hash_key, switch in _RECORDED
                 if isinstance(image.get(key), str) and image[key] and isinstance(image.get(hash_key), str)
                 and _SHA256.fullmatch(image[hash_key]))


MAX_BATCH = 256


def recorded_batch(sd: dict) -> tuple[tuple[str, ...], int] | None:
    """The batch this shell's parsed sd-metadata records for an image made with others: (their commands, its
    index)."""
    image = sd.get("image")
    batch = image.get("batch") if isinstance(image, dict) else None
    if not isinstance(batch, dict):
        return None
    commands, index = batch.get("commands"), batch.get("index")
    if (not isinstance(commands, list) or not 1 < len(commands) <= MAX_BATCH
            or not all(isinstance(c, str) for c in commands) or isinstance(index, bool)
            or not isinstance(index, int) or not 0 <= index < len(commands)):
        return None
    return tuple(commands), index


def read_png(path: str) -> Rebuilt:
    """The command that made the image at `path`. The first family present that reads wins; when all
    present fail, the first one's error is raised. ImageError: not a readable PNG; NoMetadata."""
    chunks = read_text_chunks(path)
    first: ParseError | None = None
    for chunk, what, family, reader in FAMILIES:
        if chunk not in chunks:
            continue
        try:
            command, notes, foreign = reader(chunks[chunk])
        except ParseError as exc:
            first = first or ParseError(f"{path}: its {what} does not parse: {exc}")
            continue
        sd = sd_metadata_of(chunks)
        made = recorded(sd, chunks)  # only this shell's PNGs record it
        model, model_hash = recorded_model(sd, chunks)
        return Rebuilt(command, family if foreign else "", tuple(notes), recorded_inputs(sd), made, model,
                       model_hash, recorded_batch(sd), recorded_weights(sd, chunks))
    if first is not None:
        raise first
    raise NoMetadata(f"{path} carries no generation metadata (no Dream, sd-metadata, invokeai_metadata, "
                     f"parameters or ComfyUI prompt chunk)")


def differences_line(made: Provenance, device: str | None) -> str | None:
    """One line when the device (if known) or the library versions here are not those the image was made
    with; the precision is not compared: the fetched command carries it."""
    here = Provenance.here(made.precision, device or made.device, made.noise_device)
    found = here.differences(made, ("device", "noise_device", "torch", "diffusers"))
    return f"note: {'; '.join(found)}: the picture may differ" if found else None


_GLOB_CHARS = set("*?[")


def split_argument(argument: str) -> tuple[str, str | None]:
    """`!fetch FILE` or `!fetch GLOB OUTFILE` -> (file or glob, outfile or None). A whole argument that
    names an existing file is one FILE even with spaces in it; otherwise quote names with spaces."""
    text = argument.strip()
    if os.path.isfile(text):
        return text, None
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ParseError(f"!fetch: cannot split {shown_value(text)} into words ({str(exc).lower()})") from None
    if len(words) == 1:
        return words[0], None
    if len(words) == 2:
        return words[0], words[1]
    raise ParseError("!fetch takes FILE, or GLOB OUTFILE; quote names that contain spaces")


def matching_files(pattern: str) -> list[str]:
    """The files a glob names, sorted; a plain name is itself (so missing files get a clear error)."""
    pattern = os.path.expanduser(pattern)
    if not _GLOB_CHARS & set(pattern):
        return [pattern]
    return sorted(p for p in glob.glob(pattern) if os.path.isfile(p))


def fetch_one(pattern: str) -> Rebuilt:
    paths = matching_files(pattern)
    if not paths:
        raise ImageError(f"no file matches {pattern}")
    if len(paths) > 1:
        raise ParseError(f"{pattern} matches {len(paths)} files; to write their commands to a file: "
                         f"!fetch GLOB OUTFILE")
    return read_png(paths[0])


def fetch_to_file(pattern: str, outfile: str, plain: str | None = None) -> str:
    """Write `# <path>`, a `# not carried over: ...` line when needed, and the command of every image
    matching `pattern` (sorted) into `outfile`, InvokeAI's `!fetch GLOB OUTFILE` format that `!replay`
    runs; `plain` as for `Rebuilt.replay_command`. Images without usable metadata get a comment saying why. Returns the summary line."""
    paths = matching_files(pattern)
    if not paths or not all(os.path.isfile(p) for p in paths):
        raise ImageError(f"no file matches {pattern}")
    if os.path.isdir(outfile):
        raise ShellError(f"!fetch: {outfile} is a folder; give a file name for the commands")
    if os.path.exists(outfile) and not os.path.isfile(outfile):  # a FIFO would block, a device swallow
        raise ShellError(f"!fetch: {outfile} is not a regular file; give a file name for the commands")
    if os.path.realpath(outfile) in {os.path.realpath(p) for p in paths}:
        raise ShellError(f"!fetch: {outfile} is one of the images; give another file name for the commands")
    lines: list[str] = []
    written = 0
    for path in paths:
        lines.append(_path_comment(path))
        try:
            rebuilt = read_png(path)
        except NoMetadata:
            lines.append("# no generation metadata in this file")
            continue
        except (ParseError, ImageError) as exc:
            lines.append(_path_comment(f"not rebuilt: {exc}"))
            continue
        if len(rebuilt.command.splitlines()) != 1:  # a line separator inside the prompt would split it
            lines.append("# not rebuilt: the command does not fit on one line")
            continue
        if rebuilt.notes:
            lines.append("# " + rebuilt.notes_line)
        lines.extend(_path_comment(line) for line in rebuilt.changed_inputs())
        lines.append(rebuilt.replay_command(plain))
        written += 1
    try:
        write_atomic(outfile, "\n".join(lines) + "\n")
    except OSError as exc:
        raise ShellError(f"!fetch: cannot write {outfile}: {exc.strerror or exc}") from None
    skipped = len(paths) - written
    summary = f"wrote {written} command(s) for {len(paths)} image(s) to {outfile}"
    return summary + (f"; {skipped} without usable metadata (see the # lines)" if skipped else "")


def _path_comment(text: str) -> str:
    """A comment line: characters that could end or hide the line (newlines, controls) shown as `?`."""
    safe = "".join(c if c.isprintable() else "?" for c in text)
    return "# " + (safe if len(safe) <= 300 else safe[:299] + "…")
