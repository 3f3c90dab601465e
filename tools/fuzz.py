"""The long fuzz run (issue 9): the line parser, every PNG metadata reader and the !fetch path, fed
100,000 generated inputs. Every input must either be accepted (and then round-trip through the canonical
command) or be refused with one of the shell's own errors, in one line. Anything else is a failure.

    .venv/bin/python tools/fuzz.py                 # 100,000 cases, seed 1
    .venv/bin/python tools/fuzz.py --cases 5000 --seed 7

Inputs are random but reproducible from the seed: lines built from switch spellings and hostile values,
mutated real commands and metadata (this shell's, InvokeAI 2 and 3, AUTOMATIC1111, ComfyUI), random JSON
trees, and PNG files whose bytes, chunks and header sizes are mutated (read through `!fetch`'s reader).
Prints the count per target, the rejections by error type and a summary line; exit status 1 on any
uncaught exception, broken invariant or case slower than --slow seconds."""

from __future__ import annotations

import argparse
import glob
import io
import json
import os
import random
import struct
import sys
import tempfile
import time
import traceback
import unicodedata
import warnings
import zlib
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image  # noqa: E402
from PIL.PngImagePlugin import PngInfo  # noqa: E402

from invoke_shell.errors import ShellError  # noqa: E402
from invoke_shell.outputs import fetch  # noqa: E402
from invoke_shell.outputs.metadata import png_chunks  # noqa: E402
from invoke_shell.outputs.provenance import Provenance  # noqa: E402
from invoke_shell.outputs.readers import FAMILIES  # noqa: E402
from invoke_shell.request import parse, to_command  # noqa: E402
from invoke_shell.switches import BY_DEST, BY_SPELLING, HIRES_METHODS, PRECISIONS, SAMPLERS, UNSUPPORTED  # noqa: E402

SPELLINGS = sorted(BY_SPELLING) + sorted(UNSUPPORTED)
HOSTILE_VALUES = ["-1", "0", "0.7", "1.5", "nan", "-nan", "inf", "-inf", "1e999", "1e-999", "4294967296", "-3",
                  "9" * 40, "0x10", "1_000", "k_lms", "K_EULER_A", "[neg]", "[", "]", "#", "\\", ";", "&&", "|", "`id`",
                  "$(touch pwned)", "'", '"', "=", "-", "--", "~/x.png", "../../etc/passwd", "\x00", "\x1b[2J",
                  "\u2028", "\udcff", "\ufeff", "é", "火", "1:0.5,2:0.25", "1,0.5;2,0.25", "1:2", "::", " ", "\t"]
ALPHABET = "abc xyz -=\"'\\[]#;:,.0123456789eE+_`$()\n\t\x00\x7f\u2028é火\udcff"

DREAM_CORPUS = [
    '"fire" -s 10 -S 1592514025 -W 384 -H 384 -C 7.5 -A k_lms',
    '"fire" -s 10 -S 1592514025 -W 64 -H 64 -C 7.5 -A k_lms -I sketch.png -f 0.7',
    "a cat [dog] -s 30 -S 42 -W 512 -H 768 -C 7.0 -A k_euler_a # model_id=stable-diffusion-1.5",
    "a cat -s 30 -S 42 -W 512 -H 512 -C 7.5 -I init.png -A k_lms -f 0.6 -G 0.8 -ft gfpgan -U 2 0.75 --seamless",
    '"a cat" -s50 -S42 -W512 -H512 -C7.5 -Ak_lms',
    '"fire" -s 5 -S 3 -n 4 -g -v 0.2 -o out --save_intermediates 2 --strip -t',
    '"fire" -s 5 -S 3 -V 11:0.5,12:0.25 -I a.png -f 0.5 -M m.png --invert_mask --fit --compensate_steps',
]
A1111_CORPUS = [
    "a cat, (masterpiece:1.2)\nwith a hat\nNegative prompt: dog, blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7, "
    "Seed: 965400086, Size: 512x768, Model hash: 45dee52b, Model: v1-5, Denoising strength: 0.7, Clip skip: 2",
    'a cat <lora:detail:0.8>\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1, Size: 512x512, '
    'Denoising strength: 0.5, Hires upscale: 2, Lora hashes: "detail: abc, x: def"',
    "a [cat]\nSteps: 10, Sampler: DPM++ SDE, CFG scale: 5.5, Seed: 3, Size: 64x64, Variation seed: 5, "
    "Variation seed strength: 0.3",
]
COMFY = {
    "3": {"class_type": "KSampler", "inputs": {"seed": 8566257, "steps": 20, "cfg": 8,
                                               "sampler_name": "euler_ancestral", "scheduler": "normal",
                                               "denoise": 1, "model": ["10", 0], "positive": ["6", 0],
                                               "negative": ["7", 0], "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 640, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "beautiful scenery", "clip": ["10", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": ["10", 1]}},
    "10": {"class_type": "LoraLoader", "inputs": {"lora_name": "detail.safetensors", "strength_model": 0.8,
                                                  "model": ["4", 0], "clip": ["4", 1]}},
    "12": {"class_type": "VAEEncode", "inputs": {"pixels": ["14", 0], "vae": ["4", 2]}},
    "14": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
}
INVOKE3 = {"generation_mode": "img2img", "positive_prompt": "a castle", "negative_prompt": "blurry", "width": 512,
           "height": 512, "seed": 123, "rand_device": "cpu", "cfg_scale": 7.5, "steps": 30, "scheduler": "dpmpp_2m_k",
           "strength": 0.6, "init_image": "3f2a.png", "model": {"name": "sd-1.5"},
           "loras": [{"model": {"name": "detail"}, "weight": 0.7}]}
KEYS = ["image", "images", "prompt", "seed", "steps", "cfg_scale", "sampler", "width", "height", "init_img", "strength",
        "variations", "weight", "inputs", "class_type", "text", "positive_prompt", "negative_prompt", "scheduler",
        "model", "init_image", "init_mask", "fit", "type", "app_id", "latent_image", "positive", "negative",
        "KSampler", "EmptyLatentImage", "LoadImage", "0", "1", "3"]
CHUNK_KEYS = ["Dream", "sd-metadata", "invokeai_metadata", "parameters", "prompt", "Software", "workflow"]

MADE = Provenance("float32", "cpu", "cpu", "2.13.0", "0.42.1")


def unprintable(text: str) -> bool:
    """Whether `text` holds characters that end a line or drive the terminal (controls, surrogates, U+2028/9)."""
    return any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in text)


class Fuzzer:
    def __init__(self, seed: int, workdir: str):
        self.rng = random.Random(seed)
        init = os.path.join(workdir, "init.png")  # sd-metadata records the init image's sha256
        Image.new("RGB", (8, 8)).save(init)
        chunks = png_chunks(parse(f'"a red star [blue]" -s 20 -S 7 -W 64 -H 64 -I {init} -f 0.6 -V 5:0.5'),
                            model_name="demo", model_hash="0" * 64, steps_run=12, made=MADE)
        self.sd_metadata = [json.loads(chunks["sd-metadata"])]
        self.corpus = {"Dream": DREAM_CORPUS + [chunks["Dream"]],
                       "sd-metadata": [chunks["sd-metadata"]],
                       "invokeai_metadata": [json.dumps(INVOKE3)],
                       "parameters": A1111_CORPUS + [chunks["parameters"]],
                       "prompt": [json.dumps(COMFY)]}

    # ---- text
    def text(self, size: int = 40) -> str:
        return "".join(self.rng.choice(ALPHABET) for _ in range(self.rng.randint(0, size)))

    def mutate_text(self, text: str, rounds: int | None = None) -> str:
        rng = self.rng
        for _ in range(rounds if rounds is not None else rng.randint(1, 4)):
            at = rng.randint(0, len(text))
            op = rng.random()
            if op < 0.3:
                text = text[:at] + rng.choice(HOSTILE_VALUES + list(ALPHABET)) + text[at:]
            elif op < 0.5:
                text = text[:at] + text[at + rng.randint(1, 12):]
            elif op < 0.65:
                end = min(len(text), at + rng.randint(1, 30))
                text = text[:at] + text[at:end] * rng.randint(2, 50) + text[end:]
            elif op < 0.8:
                text = text[:at] + " " + rng.choice(SPELLINGS) + " " + rng.choice(HOSTILE_VALUES) + text[at:]
            elif op < 0.9:
                text = text[:at]
            else:
                text = text[:at] + rng.choice(["x" * 3000, "9" * 500, "[" * 200, '{"a":' * 300, "\\" * 99,
                                               "a " * 9000, " #[" * 6000, "\u2028" * 50]) + text[at:]
        return text

    # ---- lines for the parser
    def plausible(self) -> str:
        """A line of switches with values in their ranges (the parser's accepting paths)."""
        rng = self.rng
        values = {"steps": lambda: rng.randint(1, 1000), "seed": lambda: rng.choice([rng.randrange(2**32), -1, -2]),
                  "width": lambda: rng.randint(8, 4096), "height": lambda: rng.randint(8, 4096),
                  "cfg_scale": lambda: rng.uniform(0.01, 100), "sampler": lambda: rng.choice(SAMPLERS),
                  "init_img": lambda: rng.choice(["a.png", "my pics/b.png", "-1", "--odd.png"]),
                  "strength": lambda: rng.uniform(0.01, 1), "init_mask": lambda: "m.png",
                  "iterations": lambda: rng.randint(1, 64), "variation_amount": lambda: rng.uniform(0.01, 1),
                  "with_variations": lambda: ",".join(f"{rng.randrange(2**32)}:{rng.random():.3f}"
                                                      for _ in range(rng.randint(1, 3))),
                  "save_intermediates": lambda: rng.randint(1, 1000), "outdir": lambda: "out dir",
                  "clip_skip": lambda: rng.randint(1, 12), "precision": lambda: rng.choice(PRECISIONS),
                  "png_compression": lambda: rng.randint(0, 9), "refiner": lambda: rng.choice(["ref", "xl:ref"]),
                  "refiner_start": lambda: rng.uniform(0.01, 0.99), "init_color": lambda: "ref.png",
                  "karras_max": lambda: rng.randint(1, 1000), "perlin": lambda: rng.uniform(0.01, 1),
                  "threshold": lambda: rng.uniform(0.01, 100), "h_symmetry_time_pct": lambda: rng.uniform(0.01, 1),
                  "v_symmetry_time_pct": lambda: rng.uniform(0.01, 1), "hires_strength": lambda: rng.uniform(0.01, 1),
                  "hires_method": lambda: rng.choice(HIRES_METHODS),
                  "seamless_axes": lambda: rng.choice(["x", "y", "x,y"]),
                  "fnformat": lambda: rng.choice(["{prefix}.{seed}.png", "{model_id}-{steps}.png", "x.png"]),
                  "outcrop": lambda: rng.choice(["top 64", "left 8 right 16", "bottom 128 top 8"]),
                  "out_direction": lambda: rng.choice(["top", "right 64"]), "seam_size": lambda: rng.randint(1, 1024),
                  "seam_blur": lambda: rng.randint(1, 256), "seam_strength": lambda: rng.uniform(0.01, 1),
                  "seam_steps": lambda: rng.randint(1, 1000), "tile_size": lambda: rng.randint(1, 512),
                  "embiggen": lambda: rng.choice(["2", "2.5 0.75", "1.5 0.5 0.25"]),
                  "embiggen_tiles": lambda: rng.choice(["1", "1 3 5"]), "embiggen_strength": lambda: rng.uniform(0.01, 1),
                  "text_mask": lambda: rng.choice(["hat", "'a red hat' 0.4", "sky 0.9"]),
                  "facetool_strength": lambda: rng.uniform(0, 1), "facetool": lambda: rng.choice(["gfpgan", "cf"]),
                  "codeformer_fidelity": lambda: rng.uniform(0, 1), "upscale": lambda: rng.choice(["2", "4 0.5"]),
                  "upscaler": lambda: rng.choice(["realesrgan-x4", "x2"])}
        parts = [rng.choice(['"fire"', "fire", "'a cat [dog]'", '"a \\"quoted\\" cat"', "a red star",
                             '"a <ember> cat withLora(ring,0.5)"', "a cat <lora:x:1.5> <lora:y>", "a cat:0.5 a dog:1"])]
        for dest in rng.sample(sorted(BY_DEST), rng.randint(0, 8)):
            switch = BY_DEST[dest]
            spelling = rng.choice(switch.spellings)
            if switch.kind == "flag":
                parts.append(spelling)
            else:
                value = values[dest]()
                text = repr(value) if isinstance(value, float) else str(value)
                quoted = '"' + text + '"' if " " in text else text
                parts.append(f"{spelling}={quoted}" if spelling.startswith("--") and rng.random() < 0.3
                             else f"{spelling} {quoted}")
        line = " ".join(parts)
        if ("-M" in line or "init_mask" in line or "invert_mask" in line) and " -I" not in line:
            line += " -I a.png"
        if (" -V" in line or "with_variations" in line) and " -S" not in line and "--seed" not in line:
            line += " -S 5"
        return line

    def line(self) -> str:
        rng = self.rng
        kind = rng.random()
        if kind < 0.1:
            return self.text(120)
        if kind < 0.3:
            return self.mutate_text(rng.choice(DREAM_CORPUS))
        if kind < 0.55:
            return self.plausible()
        if kind < 0.65:
            return self.mutate_text(self.plausible(), rounds=1)
        parts = [rng.choice(['"fire"', "fire", "'a cat'", '"[neg only]"', "", self.text(10),
                             "x" * rng.choice([1, 2001])])]
        for _ in range(rng.randint(0, 10)):
            parts.append(rng.choice(SPELLINGS))
            if rng.random() < 0.8:
                value = rng.choice(HOSTILE_VALUES + [str(rng.randint(-2**40, 2**40)), repr(rng.uniform(-2, 1e4)),
                                                     rng.choice(SAMPLERS)])
                parts[-1] += rng.choice([" ", "=", ""]) + value
        return " ".join(parts)

    # ---- JSON
    def json_value(self, depth: int = 0):
        rng = self.rng
        r = rng.random()
        if depth > 4 or r < 0.45:
            return rng.choice([None, True, False, 0, -1, 2**33, 2**64, -2**70, 0.5, 1e308, -0.0, float("nan"),
                               float("inf"), "", "fire", "k_euler_a", "euler", "512", "1e999", self.text(12), [], {}])
        if r < 0.7:
            return [self.json_value(depth + 1) for _ in range(rng.randint(0, 4))]
        return {rng.choice(KEYS) if rng.random() < 0.8 else self.text(6): self.json_value(depth + 1)
                for _ in range(rng.randint(0, 6))}

    def mutate_json(self, data):
        """Replace, delete or retype random values deep in a JSON tree."""
        rng = self.rng
        data = json.loads(json.dumps(data))
        for _ in range(rng.randint(1, 5)):
            node, parent, key = data, None, None
            for _ in range(rng.randint(0, 4)):
                if isinstance(node, dict) and node:
                    parent, key = node, rng.choice(list(node))
                elif isinstance(node, list) and node:
                    parent, key = node, rng.randrange(len(node))
                else:
                    break
                node = parent[key]
            if parent is None:
                continue
            if rng.random() < 0.2 and isinstance(parent, dict):
                del parent[key]
            else:
                parent[key] = self.json_value()
        return data

    def chunk_text(self, key: str) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.1:
            return self.text(300)
        if r < 0.25:
            return json.dumps(self.json_value(), allow_nan=True)
        base = rng.choice(self.corpus[key])
        if key in ("sd-metadata", "invokeai_metadata", "prompt") and r < 0.75:
            return json.dumps(self.mutate_json(json.loads(base)), allow_nan=True)
        return self.mutate_text(base)

    # ---- PNG files
    def png_bytes(self) -> bytes:
        rng = self.rng
        info = PngInfo()
        for key in rng.sample(CHUNK_KEYS, rng.randint(0, 3)):
            text = self.chunk_text(key) if key in self.corpus else self.text(30)
            try:
                info.add_text(key, text, zip=rng.random() < 0.3)
            except (UnicodeEncodeError, ValueError):
                pass
        mode = rng.choice(["RGB", "RGBA", "L", "P", "1", "I;16"])
        buffer = io.BytesIO()
        Image.new(mode, (rng.randint(1, 24), rng.randint(1, 24))).save(buffer, format="PNG", pnginfo=info)
        data = buffer.getvalue()
        r = rng.random()
        if r < 0.15:  # flip bytes anywhere (checksums then fail: Pillow's errors must be ours)
            data = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            data = bytes(data)
        elif r < 0.3:
            data = data[: rng.randrange(len(data))]
        elif r < 0.45:  # a header claiming another size, with a valid checksum: bombs and absurd sizes
            w, h = (rng.choice([0, 1, 7, 1000, 30000, 2**31 - 1, 2**32 - 1]) for _ in range(2))
            body = struct.pack(">II", w, h) + data[24:29]
            data = data[:16] + body + struct.pack(">I", zlib.crc32(b"IHDR" + body)) + data[33:]
        elif r < 0.6:  # a text chunk with any bytes, valid checksum, before IEND
            key = rng.choice(CHUNK_KEYS).encode()
            payload = key + b"\x00" + bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
            kind = rng.choice([b"tEXt", b"zTXt", b"iTXt"])
            chunk = struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
            data = data[:-12] + chunk + data[-12:]
        return data


def run(cases: int, seed: int, slow: float) -> int:
    workdir = tempfile.mkdtemp(prefix="invoke-fuzz-")
    fuzzer = Fuzzer(seed, workdir)
    rng = fuzzer.rng
    targets = [("parse", 0.40)] + [(f"reader {family[0]}", 0.08) for family in FAMILIES] + [
        ("fetch read_png", 0.15), ("fetch split_argument", 0.05)]
    names, weights = zip(*targets)
    counts, accepted, rejected = Counter(), Counter(), Counter()
    failures: list[str] = []
    slowest = (0.0, "")
    longest_message = ""
    started = time.monotonic()
    warnings.simplefilter("ignore")  # Pillow's DecompressionBombWarning; the shell sends warnings to its log

    def fail(target: str, detail: str) -> None:
        failures.append(f"{target}: {detail}")

    for index in range(cases):
        target = rng.choices(names, weights)[0]
        counts[target] += 1
        case_started = time.monotonic()
        subject = ""
        try:
            if target == "parse":
                subject = fuzzer.line()
                request = parse(subject)
                command = to_command(request)
                if parse(command) != request or "\n" in command:
                    fail(target, f"round trip broke for {subject!r}")
            elif target.startswith("reader "):
                chunk, _, _, reader = next(f for f in FAMILIES if f[0] == target[len("reader "):])
                subject = fuzzer.chunk_text(chunk)
                command, notes, foreign = reader(subject)
                if to_command(parse(command)) != command:
                    fail(target, f"the command it made does not round-trip: {command!r}")
                if not all(isinstance(n, str) and not unprintable(n) for n in notes):
                    fail(target, f"notes that are not one printable line each: {notes!r}")
            elif target == "fetch read_png":
                path = os.path.join(workdir, f"{index % 64}.png")
                data = fuzzer.png_bytes()
                subject = f"{len(data)} PNG bytes"
                with open(path, "wb") as f:
                    f.write(data)
                if index % 64 == 0 and index:  # now and then the whole folder, as !fetch GLOB OUTFILE does
                    fetch.fetch_to_file(os.path.join(workdir, "*.png"), os.path.join(workdir, "commands.txt"))
                rebuilt = fetch.fetch_one(path)
                if to_command(parse(rebuilt.command)) != rebuilt.command or unprintable(rebuilt.notes_line):
                    fail(target, f"what !fetch would say is not one printable line: {rebuilt!r}")
            else:
                subject = fuzzer.mutate_text(rng.choice(["a.png", "out/*.png cmds.txt", '"my pics/*.png" c.txt']))
                fetch.split_argument(subject)
            accepted[target] += 1
        except ShellError as exc:
            rejected[type(exc).__name__] += 1
            message = str(exc)
            if len(message) > len(longest_message):
                longest_message = message
            if unprintable(message):  # a newline would make two lines, an escape sequence would reach the terminal
                fail(target, f"a message with control characters for {subject[:200]!r}: {message[:300]!r}")
        except Exception:  # noqa: BLE001 - anything else is what this script looks for
            fail(target, f"uncaught for {subject[:200]!r}:\n{traceback.format_exc()}")
        took = time.monotonic() - case_started
        if took > slowest[0]:
            slowest = (took, f"{target} {subject[:80]!r}")
        if took > slow:
            fail(target, f"took {took:.1f} s for {subject[:200]!r}")
    elapsed = time.monotonic() - started
    for path in glob.glob(os.path.join(workdir, "*")):
        os.unlink(path)
    os.rmdir(workdir)

    print(f"{'target':24} {'cases':>7} {'accepted':>9} {'refused':>8}")
    for name in names:
        print(f"{name:24} {counts[name]:7} {accepted[name]:9} {counts[name] - accepted[name]:8}")
    print("refused by error type: " + ", ".join(f"{k} {v}" for k, v in rejected.most_common()))
    print(f"slowest case: {slowest[0]:.2f} s ({slowest[1]})")
    print(f"longest refusal message ({len(longest_message)} characters): {longest_message[:300]}")
    for failure in failures[:20]:
        print("FAILURE " + failure)
    uncaught = sum(1 for f in failures if ": uncaught for " in f)
    print(f"fuzz: {cases} cases in {elapsed:.1f} s (seed {seed}): {sum(accepted.values())} accepted, "
          f"{sum(rejected.values())} refused with the shell's own errors, {uncaught} uncaught exceptions, "
          f"{len(failures) - uncaught} other failures")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--slow", type=float, default=2.0, help="a case slower than this many seconds fails")
    args = parser.parse_args()
    return run(args.cases, args.seed, args.slow)


if __name__ == "__main__":
    sys.exit(main())
