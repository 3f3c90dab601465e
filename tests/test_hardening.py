"""The catalogue of bad input (issue 9). Every case runs through the Shell (or, for a models.yaml read at
launch, the command line) and must give exactly one line beginning "error:", no traceback, write nothing
anywhere, and leave the shell able to run a good command at once. The files the cases name are made here:
broken and hostile images, PNGs with hostile metadata, broken and malicious model files."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from invoke_shell.history import ShellHistory
from invoke_shell.outputs.pngio import write_png

GOOD = '"fire" -s 1 -S 1'
GOOD_SAID = 'outputs/000001.1.png: "fire" -s 1 -S 1 -W 64 -H 64 -C 7.5 -A k_lms'


# ---------------------------------------------------------------- the files the cases name

def png_of_size(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (1-bit grey) with almost no data: what a bomb looks like."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


def metadata_png(path, chunks: dict[str, str], compress: bool = False) -> None:
    if compress:  # zTXt: Pillow caps what one text chunk may decompress to
        info = PngInfo()
        for key, value in chunks.items():
            info.add_text(key, value, zip=True)
        Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    else:
        write_png(str(path), Image.new("RGB", (8, 8), (10, 20, 30)), chunks)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-input")
    Image.new("RGB", (64, 64), (200, 40, 10)).save(folder / "good.png")
    good = (folder / "good.png").read_bytes()
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.png").write_text("hello, not an image")
    (folder / "trunc.png").write_bytes(good[: len(good) // 2])
    (folder / "adir").mkdir()
    os.symlink("loop2", folder / "loop1")
    os.symlink("loop1", folder / "loop2")
    os.mkfifo(folder / "fifo")
    (folder / "bomb.png").write_bytes(png_of_size(30000, 30000))  # 900 MP claimed, Pillow's limit is 179 MP
    Image.new("RGB", (4200, 64), (1, 2, 3)).save(folder / "wide.png")
    Image.new("CMYK", (64, 64), (0, 50, 100, 0)).save(folder / "cmyk.jpg")
    Image.new("RGB", (64, 64)).save(folder / "nometa.png")
    (folder / "latin1.txt").write_bytes(b'"caf\xe9" -s 2\n')
    metadata_png(folder / "long-dream.png", {"Dream": '"' + "x" * 100_000 + '" -s 5'})
    metadata_png(folder / "huge-json.png", {"sd-metadata": '{"image": {"prompt": "' + "y" * 4_100_000 + '"}}'})
    metadata_png(folder / "ztxt-bomb.png", {"sd-metadata": "z" * 20_000_000}, compress=True)
    metadata_png(folder / "steps-text.png", {"sd-metadata": json.dumps(
        {"image": {"prompt": "a cat", "steps": "many", "seed": 1}})})
    metadata_png(folder / "seed-list.png", {"invokeai_metadata": json.dumps({"positive_prompt": "a", "seed": [1, 2]})})
    metadata_png(folder / "comfy-list.png", {"prompt": json.dumps([{"class_type": "KSampler"}])})
    metadata_png(folder / "a1111-steps.png",
                 {"parameters": "a cat\nSteps: 1e400, Sampler: Euler, CFG scale: 7, Seed: 1"})
    metadata_png(folder / "chained.png", {"Dream": '"a cat" -s 5 -S 1; touch pwned'})
    metadata_png(folder / "backticks.png", {"Dream": "a cat -s 5 `touch pwned`"})
    metadata_png(folder / "subshell.png", {"Dream": "a cat -s 5 $(touch pwned) && touch pwned2"})
    metadata_png(folder / "nul.png", {"Dream": '"a\x00cat" -s 5'})
    return folder


# ---------------------------------------------------------------- the catalogue: (id, line, what the line says)
# `{F}` is the folder of files above. Lines before the last (separated by \n) are run first and must work.

CASES = [
    # lines
    ("unknown-long-switch", '"fire" --stpes 10', "unknown switch '--stpes'; type !help for the list"),
    ("unknown-short-switch", '"fire" -Z 3', "unknown switch '-Z'"),
    ("missing-value", '"fire" -W', "-W/--width needs a value (W)"),
    ("missing-value-before-switch", '"fire" -S -s 5', "-S/--seed needs a value (SEED)"),
    ("unterminated-single-quote", "'fire -s 5", "(no closing quotation): check the quotes"),
    ("unterminated-quote-in-a-switch", 'fire -I "my sketch.png -f 0.5', "(no closing quotation): check the quotes"),
    ("trailing-backslash", "fire -s 5 \\", "(no escaped character): check the quotes"),
    ("lone-dash", "-", "a prompt is needed before the switches"),
    ("switches-only", "-s 10 -S 3 -W 64", "a prompt is needed before the switches"),
    ("10000-character-prompt", "x" * 10_000, "the prompt has 10000 characters; at most 2000 are allowed"),
    ("nul-in-prompt", '"fi\x00re" -s 2', "the prompt contains the control character '\\x00'"),
    ("nul-in-path", '"fire" -I a\x00b.png -f 0.5', "the -I/--init_img path contains the control character '\\x00'"),
    ("non-utf8-byte", "fire \udcff -s 2", "the prompt contains a byte that is not UTF-8 text (0xff)"),
    ("escape-sequence", "fire\x1b[2J -s 2", "the prompt contains the control character '\\x1b'"),
    ("delete-character", "fire\x7f -s 2", "the prompt contains the control character '\\x7f'"),
    ("line-separator", '"fire\u2028-o /tmp" -s 2', "the prompt contains the control character '\\u2028'"),
    ("glued-garbage", '"fire" -s5x', "-s/--steps expects an integer, got '5x'"),
    ("flag-with-value", '"fire" -g=yes', "--grid takes no value, got 'yes'"),
    ("shell-syntax-after-switches", "fire -s 5 ; rm -rf ~", "unexpected ';' after the switches"),
    # ! commands
    ("unknown-command", "!nosuch", "unknown command '!nosuch'; type !help for the list"),
    ("history-not-a-number", "!history abc", "!history takes a positive number of entries, got 'abc'"),
    ("verify-unknown-option", "!verify {F}/empty.png --bogus", "!verify: unknown option '--bogus'; usage: !verify"),
    ("verify-missing", "!verify {F}/missing*.png", "!verify: no file matches "),
    ("history-zero", "!history 0", "!history takes a positive number of entries, got '0'"),
    ("clear-with-argument", "!clear now", "!clear takes no argument but --yes, got 'now'"),
    ("search-without-text", "!search", "!search needs some text"),
    ("switch-without-name", "!switch", "!switch needs a model name"),
    ("fetch-three-words", "!fetch a b c", "!fetch takes FILE, or GLOB OUTFILE"),
    ("fetch-unclosed-quote", '!fetch "unclosed', "!fetch: cannot split '\"unclosed' into words (no closing quotation)"),
    ("fetch-glob-of-many", "!fetch {F}/*.png", "files; to write their commands to a file: !fetch GLOB OUTFILE"),
    ("replay-without-file", "!replay", "!replay needs a command file"),
    ("replay-a-folder", "!replay {F}/adir", "is a folder, not a command file"),
    ("replay-non-utf8-file", "!replay {F}/latin1.txt", "'utf-8' codec can't decode byte 0xe9"),
    ("schedule-without-command", "!schedule", "!schedule needs a command"),
    ("schedule-bad-command", '!schedule "fire" -s 0', "-s/--steps must be in [1, 1000], got 0"),
    ("recall-beyond-history", "!99", "!99: the history has entries 1 to 2"),
    ("recall-zero", "!0", "!0: the history has entries 1 to 2"),
    # values
    ("steps-0", '"fire" --steps=0', "-s/--steps must be in [1, 1000], got 0"),
    ("steps-negative", '"fire" -s -5', "-s/--steps must be in [1, 1000], got -5"),
    ("steps-huge", '"fire" -s 1000000', "-s/--steps must be in [1, 1000], got 1000000"),
    ("steps-float", '"fire" -s 1e3', "-s/--steps expects an integer, got '1e3'"),
    ("strength-0", '"fire" -I {F}/good.png -f 0', "-f/--strength must be in (0, 1], got 0.0"),
    ("strength-1.5", '"fire" -I {F}/good.png -f 1.5', "-f/--strength must be in (0, 1], got 1.5"),
    ("strength-nan", '"fire" -I {F}/good.png -f nan', "-f/--strength must be in (0, 1], got nan"),
    ("strength-inf", '"fire" -I {F}/good.png -f inf', "-f/--strength must be in (0, 1], got inf"),
    ("strength-zero-steps", '"fire" -s 1 -I {F}/good.png -f 0.5', "runs 0 steps from the init image"),
    ("height-0", '"fire" -H 0', "-H/--height must be in [8, 4096], got 0"),
    ("width-100000", '"fire" -W 100000',
     "-W/--width 100000 x a height of 512 would need about 191 GiB of memory to decode"),
    ("size-100000-square", '"fire" -W 100000 -H 100000', "would need about 36 TiB of memory to decode"),
    ("cfg-nan", '"fire" -C nan', "-C/--cfg_scale must be in (0, 100], got nan"),
    ("cfg-negative", '"fire" -C -1', "-C/--cfg_scale must be in (0, 100], got -1.0"),
    ("seed-2^32", '"fire" -S 4294967296', "-S/--seed must be in [0, 2^32) or a negative back-reference"),
    ("seed-huge", '"fire" -S 99999999999999999999999', "-S/--seed must be in [0, 2^32)"),
    ("seed-back-beyond-history", f'{GOOD}\n"fire" -S -3', "-S/--seed -3: the previous command made 1 image(s)"),
    ("seed-back-reference-absurd", '"fire" -S -99999999999999999999',
     "-S/--seed -99999999999999999999: a back-reference reaches at most -64"),
    ("init-back-beyond-history", f'{GOOD}\n"fire" -I -5 -f 0.5', "-I/--init_img -5: the previous command made 1"),
    ("unknown-sampler", '"fire" -A dpm_fast', "-A/--sampler must be one of ddim, plms, k_lms"),
    ("clip-skip-0", '"fire" --clip_skip 0', "--clip_skip must be in [1, 12], got 0"),
    ("unknown-precision", '"fire" --precision half',
     "--precision must be one of auto, float32, float16, bfloat16; got 'half'"),
    ("iterations-65", '"fire" -n 65', "-n/--iterations must be in [1, 64], got 65"),
    ("variation-nan", '"fire" -v nan', "-v/--variation_amount must be in (0, 1], got nan"),
    # files
    ("init-missing", '"fire" -I {F}/missing.png -f 0.5', "-I/--init_img: no such file: "),
    ("init-directory", '"fire" -I {F}/adir -f 0.5', "adir is a folder, not an image"),
    ("init-empty", '"fire" -I {F}/empty.png -f 0.5', "empty.png is not an image Pillow can read"),
    ("init-not-an-image", '"fire" -I {F}/text.png -f 0.5', "text.png is not an image Pillow can read"),
    ("init-truncated", '"fire" -s 4 -I {F}/trunc.png -f 0.5', "trunc.png: image file is truncated"),
    ("init-bomb", '"fire" -s 4 -I {F}/bomb.png -f 0.5', "bomb.png is too large to open safely"),
    ("init-huge-dimensions", '"fire" -s 4 -I {F}/wide.png -f 0.5', "4200 x"),
    ("init-symlink-loop", '"fire" -s 4 -I {F}/loop1 -f 0.5', "Too many levels of symbolic links"),
    ("mask-missing", '"fire" -s 4 -I {F}/good.png -f 0.5 -M {F}/missing.png', "-M/--init_mask: no such file"),
    ("mask-not-an-image", '"fire" -s 4 -I {F}/good.png -f 0.5 -M {F}/text.png', "-M/--init_mask: "),
    ("fetch-directory", "!fetch {F}/adir", "adir is a folder, not an image"),
    ("fetch-empty", "!fetch {F}/empty.png", "empty.png is not an image Pillow can read"),
    ("fetch-truncated", "!fetch {F}/trunc.png", "trunc.png: image file is truncated"),
    ("fetch-bomb", "!fetch {F}/bomb.png", "bomb.png is too large to open safely"),
    ("fetch-jpeg", "!fetch {F}/cmyk.jpg", "cmyk.jpg is a JPEG image; only PNGs carry the metadata"),
    ("fetch-symlink-loop", "!fetch {F}/loop1", "Too many levels of symbolic links"),
    ("fetch-fifo", "!fetch {F}/fifo", "fifo is not a regular file"),
    ("fetch-no-metadata", "!fetch {F}/nometa.png", "nometa.png carries no generation metadata"),
    ("fetch-glob-to-fifo", "!fetch {F}/good.png {F}/fifo", "fifo is not a regular file"),
    # metadata from untrusted PNGs
    ("meta-100000-character-dream", "!fetch {F}/long-dream.png",
     "the Dream command has 100007 characters; at most 20000 are read"),
    ("meta-4MB-json", "!fetch {F}/huge-json.png", "sd-metadata is 4100025 characters long; at most 4000000"),
    ("meta-ztxt-bomb", "!fetch {F}/ztxt-bomb.png", "Decompressed data too large"),
    ("meta-steps-as-text", "!fetch {F}/steps-text.png", "sd-metadata steps should be an integer, got 'many'"),
    ("meta-seed-as-list", "!fetch {F}/seed-list.png", "seed should be an integer, got [1, 2]"),
    ("meta-comfy-graph-as-list", "!fetch {F}/comfy-list.png", "should be a JSON object, got list"),
    ("meta-steps-1e400", "!fetch {F}/a1111-steps.png", "Steps should be an integer, got '1e400'"),
    ("meta-chained-with-semicolon", "!fetch {F}/chained.png", "its Dream command does not parse"),
    ("meta-backticks", "!fetch {F}/backticks.png", "its Dream command does not parse"),
    ("meta-subshell-and-and", "!fetch {F}/subshell.png", "its Dream command does not parse"),
    ("meta-nul", "!fetch {F}/nul.png", "control character '\\x00'"),
]


def snapshot(*roots) -> dict:
    """Every file and folder under `roots` with its size and modification time (symlinks not followed)."""
    seen = {}
    for root in roots:
        for folder, dirs, names in os.walk(root):
            for name in dirs + names:
                path = os.path.join(folder, name)
                st = os.lstat(path)
                seen[path] = (st.st_size, st.st_mtime_ns)
    return seen


def refused(shell, line: str, expected: str, *watched) -> str:
    """Run `line`; it must fail with one `error:` line containing `expected` and change nothing on disk.
    Progress lines a command prints before trying (`loading model X...`) may come first."""
    shell.said.clear()
    before = snapshot(*watched)
    assert shell.execute(line) is False
    said = list(shell.said)
    assert said and said[-1].startswith("error: "), said
    assert all(s.startswith(("loading model ", "test-loading ")) for s in said[:-1]), said
    message = said[-1]
    assert "\n" not in message and "Traceback" not in message
    assert expected in message, message
    assert snapshot(*watched) == before, "the refused line wrote or changed files"
    return message


@pytest.fixture
def at_prompt(shell, tmp_path, monkeypatch):
    """The shared-model Shell, in tmp_path, with a history of two entries (as at the interactive prompt)."""
    monkeypatch.chdir(tmp_path)
    shell.outdir = "outputs"
    history = ShellHistory(str(tmp_path / "history"))
    history.store_string('"fire" -s 2 -S 3')
    history.store_string("!models")
    shell.history = history
    return shell


@pytest.mark.parametrize("case_id,line,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(at_prompt, tmp_path, files, case_id, line, expected):
    shell = at_prompt
    *setup, line = line.replace("{F}", str(files)).split("\n")
    for good in setup:
        assert shell.execute(good), shell.said
    refused(shell, line, expected, tmp_path, files)
    shell.said.clear()
    assert shell.execute(GOOD), shell.said  # the shell goes on, on the same model
    assert shell.said[-1].endswith(': "fire" -s 1 -S 1 -W 64 -H 64 -C 7.5 -A k_lms')
    assert not os.path.exists("pwned") and not os.path.exists("pwned2")


def test_the_catalogue_is_complete():
    """The issue asks for at least 40 cases, among them every kind named there."""
    ids = {c[0] for c in CASES} | {c[0] for c in MODEL_CASES} | {c[0] for c in YAML_CASES}
    assert len(ids) == len(CASES) + len(MODEL_CASES) + len(YAML_CASES) >= 40
    for needed in ("unknown-long-switch", "missing-value", "unterminated-single-quote", "lone-dash", "switches-only",
                   "10000-character-prompt", "nul-in-prompt", "non-utf8-byte", "escape-sequence",
                   "history-not-a-number", "recall-beyond-history", "steps-0", "steps-negative", "steps-huge",
                   "strength-0", "strength-1.5", "strength-nan", "strength-inf", "height-0", "width-100000",
                   "cfg-nan", "seed-2^32", "seed-back-beyond-history", "unknown-sampler", "init-missing",
                   "init-directory", "init-empty", "init-not-an-image", "init-truncated", "init-bomb",
                   "init-huge-dimensions", "init-symlink-loop", "meta-100000-character-dream", "meta-steps-as-text",
                   "meta-chained-with-semicolon", "meta-backticks", "yaml-malformed", "model-missing-weights",
                   "model-truncated-safetensors", "model-pickle-that-runs-code", "model-wrong-family"):
        assert needed in ids, needed


def test_recall_from_an_empty_history(at_prompt, tmp_path):
    at_prompt.history = ShellHistory(str(tmp_path / "empty-history"))
    refused(at_prompt, "!3", "!3: the history is empty", tmp_path)


def test_a_fifo_as_init_image_or_mask_is_refused_without_waiting(at_prompt, tmp_path, files):
    """Opening a FIFO blocks until someone writes to it: the shell must refuse it, not hang. A writer is
    started for each case so that a shell that does open it gets an empty read instead of hanging."""
    import threading

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    for line in (f'"fire" -s 4 -I {fifo} -f 0.5', f'"fire" -s 4 -I {files}/good.png -f 0.5 -M {fifo}'):
        writer = threading.Thread(target=lambda: open(fifo, "wb").close(), daemon=True)
        writer.start()
        try:
            refused(at_prompt, line, "pipe.png is not a regular file", tmp_path)
        finally:  # a reader of our own lets the writer's open return when the shell never opened the FIFO
            reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            writer.join(10)
            os.close(reader)


def test_size_not_a_multiple_of_8_is_floored_with_one_warning(at_prompt):
    """Not refused (InvokeAI's rule): one warning line, and the image records the size it was made at."""
    assert at_prompt.execute('"fire" -s 1 -S 1 -W 100 -H 60')
    assert at_prompt.said == ["warning: size 100x60 floored to 96x56 (this model needs multiples of 8)",
                              'outputs/000001.1.png: "fire" -s 1 -S 1 -W 96 -H 56 -C 7.5 -A k_lms']
    assert Image.open("outputs/000001.1.png").size == (96, 56)


# ---------------------------------------------------------------- unusual but valid images

@pytest.mark.parametrize("make,same_as", [
    (lambda: Image.new("I;16", (64, 64), 257 * 117), (117, 117, 117)),               # 16-bit grey
    (lambda: Image.new("CMYK", (64, 64), (255, 0, 0, 0)), (0, 255, 255)),            # pure cyan
    (lambda: Image.new("RGB", (64, 64), (30, 60, 90)).convert("P", palette=Image.Palette.ADAPTIVE), (30, 60, 90)),
], ids=["16-bit", "cmyk", "palette"])
def test_unusual_image_modes_are_read_as_the_picture_they_show(at_prompt, tmp_path, make, same_as):
    """An init image in another mode gives the same image as its plain 8-bit RGB equivalent."""
    odd, plain = tmp_path / "odd.tiff", tmp_path / "plain.png"
    make().save(odd)
    Image.new("RGB", (64, 64), same_as).save(plain)
    for path in (odd, plain):
        assert at_prompt.execute(f'"fire" -s 2 -S 5 -I {path} -f 0.5'), at_prompt.said
    first, second = (Image.open(p) for p in sorted(os.path.join("outputs", n) for n in os.listdir("outputs")
                                                  if n.endswith(".png")))
    assert first.tobytes() == second.tobytes()


def test_palette_image_with_transparency_is_its_own_mask(at_prompt, tmp_path):
    """A palette PNG with a transparent colour: the transparent part is repainted (inpainting), said in a
    line, and the run works."""
    image = Image.new("P", (64, 64), 1)
    image.putpalette([0, 0, 0, 200, 40, 10] + [0, 0, 0] * 254)
    image.paste(0, (0, 0, 32, 64))
    image.save(tmp_path / "half.png", transparency=0)
    assert at_prompt.execute(f'"fire" -s 2 -S 5 -I {tmp_path / "half.png"} -f 0.5'), at_prompt.said
    assert not any(s.startswith(("error", "unexpected")) for s in at_prompt.said)
    assert at_prompt.said[-1].startswith("outputs/000001.5.png: ")


# ---------------------------------------------------------------- metadata: data only, never where to write

def test_an_outdir_in_a_png_is_dropped_and_said(at_prompt, tmp_path):
    """`-o` inside a Dream chunk would write outside the output folder: !fetch drops it and says so, and
    !fetch GLOB OUTFILE + !replay of such files writes only into the session's output folder."""
    evil = tmp_path / "evil"
    evil.mkdir()
    metadata_png(evil / "a.png", {"Dream": '"a cat" -s 1 -S 4 -o ../elsewhere'})
    metadata_png(evil / "b.png", {"Dream": '"a dog" -s 1 -S 5 --outdir=../../escaped'})
    assert at_prompt.execute(f"!fetch {evil / 'a.png'}")
    assert at_prompt.prefill == '"a cat" -s 1 -S 4 -C 7.5 -A k_lms'
    assert at_prompt.said[-1] == "not carried over: -o ../elsewhere (output folders are not taken from files)"
    assert at_prompt.execute(f"!fetch {evil}/*.png cmds.txt")
    assert at_prompt.execute("!replay cmds.txt"), at_prompt.said
    pngs = sorted(n for n in os.listdir("outputs") if n.endswith(".png"))
    assert pngs == ["000001.4.png", "000002.5.png"]
    assert not (tmp_path.parent / "elsewhere").exists() and not (tmp_path.parent.parent / "escaped").exists()


def test_terminal_escapes_in_metadata_never_reach_the_screen(at_prompt, tmp_path):
    """What a PNG says is shown as text: escape sequences and line breaks in the notes of what was not
    carried over (switch values, model names, ComfyUI node types) come out as spaces."""
    escape = "\x1b[2J\x1b]0;owned\x07"
    graph = {"3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 2, "cfg": 7, "positive": ["6", 0]}},
             "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat"}},
             "9": {"class_type": f"Evil{escape}Node", "inputs": {}}}
    for name, chunks in (("dream", {"Dream": f"a cat -s 2 -S 1 -A {escape}x -r {escape} # model_id=m{escape}"}),
                         ("comfy", {"prompt": json.dumps(graph)})):
        metadata_png(tmp_path / f"{name}.png", chunks)
        at_prompt.said.clear()
        assert at_prompt.execute(f"!fetch {tmp_path / name}.png"), at_prompt.said
        assert at_prompt.said[-1].startswith("not carried over: ")
        assert all(ch.isprintable() for line in at_prompt.said for ch in line), at_prompt.said


@pytest.mark.parametrize("chunk,text", [
    ("parameters", "x\n" + "a " * 9_990),          # A1111's key regex, unbounded, was quadratic here (3 s)
    ("Dream", "x" + " #[" * 6_600 + '"'),          # the model_id trailer search was too (1.5 s)
], ids=["a1111-line-without-colon", "dream-many-trailers"])
def test_reading_metadata_takes_linear_time(tmp_path, chunk, text):
    """Text just under the 20,000 characters read from a chunk, shaped to make a backtracking regex
    quadratic, is refused in well under a second."""
    import time

    from invoke_shell.errors import ParseError
    from invoke_shell.outputs.fetch import read_png

    metadata_png(tmp_path / "slow.png", {chunk: text})
    started = time.monotonic()
    with pytest.raises(ParseError, match="characters; at most 2000 are allowed"):
        read_png(str(tmp_path / "slow.png"))
    assert time.monotonic() - started < 0.5


# ---------------------------------------------------------------- models: through the shell

@pytest.fixture(scope="module")
def model_shell_parts(tmp_path_factory, cache_dir):
    """A models.yaml with the tiny model and broken or hostile stanzas, and a manager with tiny active."""
    import pickle

    import torch
    from safetensors.torch import save_file

    from invoke_shell.models.manager import ModelManager
    from invoke_shell.models.registry import load_registry

    folder = tmp_path_factory.mktemp("models")
    unet = "model.diffusion_model."
    sd1 = {unet + "input_blocks.0.0.weight": torch.zeros(8, 4, 3, 3),
           unet + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": torch.zeros(8, 768)}
    save_file(sd1, folder / "full.safetensors")
    data = (folder / "full.safetensors").read_bytes()
    (folder / "cut.safetensors").write_bytes(data[: len(data) // 2])
    save_file({"conditioner.embedders.1.model.positional_embedding": torch.zeros(77, 8),
               unet + "input_blocks.0.0.weight": torch.zeros(8, 4, 3, 3)},
              folder / "xl.safetensors")  # SDXL's text encoders, but a UNet without cross-attention
    (folder / "sd2.yaml").write_text(json.dumps({"model": {"params": {"unet_config": {"params": {
        "context_dim": 1024, "in_channels": 4}}}}}))
    marker = folder / "pwned"

    class Payload:
        def __reduce__(self):  # unpickling this would create the marker file
            return (open, (str(marker), "w"))

    torch.save({"state_dict": sd1, "payload": Payload()}, folder / "evil.ckpt")
    (folder / "raw.ckpt").write_bytes(pickle.dumps(Payload(), protocol=2))
    (folder / "half").mkdir()
    (folder / "half" / "model_index.json").write_text("{}")
    (folder / "models.yaml").write_text(
        "tiny:\n  format: diffusers\n  path: builtin:tiny\n"
        "nofile:\n  weights: missing.safetensors\n"
        "cut:\n  weights: cut.safetensors\n"
        "evil:\n  weights: evil.ckpt\n"
        "raw:\n  weights: raw.ckpt\n"
        "xl:\n  weights: xl.safetensors\n"
        "mismatch:\n  weights: full.safetensors\n  config: sd2.yaml\n"
        "nodir:\n  format: diffusers\n  path: nowhere\n"
        "half:\n  format: diffusers\n  path: half\n")
    manager = ModelManager(load_registry(folder / "models.yaml"), device="cpu", precision="float32")
    manager.activate("tiny")
    return folder, manager, marker


MODEL_CASES = [
    ("model-missing-weights", "!switch nofile", "model 'nofile': no such file: "),
    ("model-truncated-safetensors", "!switch cut", "cut.safetensors is not a valid safetensors file"),
    ("model-pickle-that-runs-code", "!switch evil", "refusing to load evil.ckpt: its pickle would run"),
    ("model-bare-pickle", "!switch raw", "raw.ckpt"),
    ("model-wrong-family", "!switch xl", "xl.safetensors: unrecognised UNet layout (no cross-attention layers)"),
    ("model-config-of-another-family", "!switch mismatch", "config sd2.yaml describes"),
    ("model-missing-folder", "!switch nodir", "model 'nodir': no such folder: "),
    ("model-half-downloaded-folder", "!switch half", "model 'half' failed to load: "),
    ("model-import-pickle", "!import_model {M}/evil.ckpt --name x --description x", "refusing to load evil.ckpt"),
    ("model-unknown", "!switch nobody", "unknown model 'nobody'; known models: tiny, nofile"),
]


@pytest.mark.parametrize("case_id,line,expected", MODEL_CASES, ids=[c[0] for c in MODEL_CASES])
def test_bad_models_are_one_line_and_the_model_stays(model_shell_parts, tmp_path, monkeypatch, case_id, line,
                                                     expected):
    from invoke_shell.shell import Shell

    folder, manager, marker = model_shell_parts
    monkeypatch.chdir(tmp_path)
    said = []
    shell = Shell(manager, outdir="outputs", say=said.append, model="tiny")
    shell.said = said
    refused(shell, line.replace("{M}", str(folder)), expected, tmp_path, folder)
    assert not marker.exists()
    assert manager.active.name == "tiny"
    said.clear()
    assert shell.execute(GOOD) and said == [GOOD_SAID]


# ---------------------------------------------------------------- models.yaml: at launch, through the CLI

def _laughs(field: str) -> str:
    """A yaml 'billion laughs': nine lines of aliases that expand to 9^9 items."""
    lines = ["m:", "  format: diffusers", "  path: x", "  l0: &l0 [" + ",".join(['"lol"'] * 9) + "]"]
    lines += [f"  l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return "\n".join(lines + [f"  {field}: *l8", ""])


YAML_CASES = [
    ("yaml-malformed", "a:\n\tpath: x\n", "malformed YAML at line 2"),
    ("yaml-python-object", "m:\n  format: diffusers\n  path: !!python/object/apply:os.system [\"touch pwned\"]\n",
     "could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system'"),
    ("yaml-billion-laughs-path", _laughs("path").replace("  path: x\n", "", 1), "model 'm': path must be text"),
    ("yaml-billion-laughs-description", _laughs("description"), "model 'm': description must be text"),
    ("yaml-not-utf8", b"m:\n  description: caf\xe9\n", "cannot read models.yaml: 'utf-8' codec can't decode"),
    ("yaml-a-list", "- a\n- b\n", "expected model names at the top level, found list"),
]


def test_bad_models_yaml_at_launch(tmp_path):
    """Each bad models.yaml (and an output folder that is a file): exit status 2, one line on stderr,
    nothing else printed, nothing written (not even the output folder), and never a hang on a yaml bomb."""
    cases = [(case_id, text, expected, []) for case_id, text, expected in YAML_CASES]
    cases.append(("outdir-is-a-file", "", "--outdir notes.txt: cannot write there (File exists)",
                  ["-o", "notes.txt"]))
    for case_id, text, expected, args in cases:
        run = tmp_path / case_id
        run.mkdir()
        if text:
            (run / "models.yaml").write_bytes(text if isinstance(text, bytes) else text.encode())
        (run / "notes.txt").write_text("not a folder")
        before = snapshot(run)
        result = subprocess.run([sys.executable, "-m", "invoke_shell", "--from_file", "-", *args], cwd=run,
                                input="", capture_output=True, text=True, timeout=60, env=os.environ.copy())
        assert result.returncode == 2, (case_id, result.stderr)
        assert result.stdout == "" and len(result.stderr.splitlines()) == 1, (case_id, result.stderr)
        assert result.stderr.startswith("invoke-shell: ") and expected in result.stderr, (case_id, result.stderr)
        assert snapshot(run) == before, case_id
