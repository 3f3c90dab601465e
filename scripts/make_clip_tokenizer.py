"""Write the CLIP BPE tokenizer files shipped in invoke_shell/data/configs/clip-tokenizer/.

The source is OpenAI's CLIP vocabulary `bpe_simple_vocab_16e6.txt.gz` (MIT), as published inside the
open_clip_torch wheel. Fetch only the wheel, never install it (it pulls a CUDA torch):

    pip download --no-deps -d /tmp/oc open_clip_torch
    python scripts/make_clip_tokenizer.py --wheel /tmp/oc/open_clip_torch-*.whl

Without --wheel/--gz the script runs that `pip download` itself into a temporary folder.

Output is the classic layout (vocab.json + merges.txt, which loads faster than tokenizer.json) plus
tokenizer_config.json / special_tokens_map.json with the SD 1.x conventions: bos <|startoftext|> 49406,
eos = pad = unk <|endoftext|> 49407, model_max_length 77. SD 2.x uses the same files with pad_token "!"
(id 0); the loader passes that override (see invoke_shell/models/singlefile.py).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "invoke_shell" / "data" / "configs" / "clip-tokenizer"
GZ_NAME = "open_clip/bpe_simple_vocab_16e6.txt.gz"
GZ_MD5 = "933b7abbbbde62c36f02f0e6ccde464f"
N_MERGES = 49152 - 256 - 2  # CLIP keeps the first 48,894 merges of the file
CHECKS = {  # published ids (CLIP / diffusers tests)
    "a photo of a cat": [49406, 320, 1125, 539, 320, 2368, 49407],
    "Hello, world!": [49406, 3306, 267, 1002, 256, 49407],
}
SPECIAL = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
           "unk_token": "<|endoftext|>"}


def bytes_to_unicode() -> list[str]:
    """OpenAI CLIP's printable stand-in for each byte value, in vocabulary order."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1))
    extra = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + i) for i in range(len(extra))]


def read_gz(args) -> bytes:
    if args.gz:
        return Path(args.gz).read_bytes()
    if args.wheel:
        with zipfile.ZipFile(args.wheel) as whl:
            return whl.read(GZ_NAME)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", tmp, "open_clip_torch"],
                       check=True)
        (wheel,) = Path(tmp).glob("open_clip_torch-*.whl")
        with zipfile.ZipFile(wheel) as whl:
            return whl.read(GZ_NAME)


def build(gz: bytes) -> tuple[dict[str, int], list[str]]:
    """(vocab, merges) exactly as CLIP's SimpleTokenizer builds them."""
    lines = gzip.decompress(gz).decode("utf-8").split("\n")
    merges = lines[1:N_MERGES + 1]  # line 0 is the "#version" header
    chars = bytes_to_unicode()
    tokens = chars + [c + "</w>" for c in chars] + ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def write(out: Path, vocab: dict[str, int], merges: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True,
              "errors": "replace", "add_prefix_space": False, **SPECIAL}
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (out / "special_tokens_map.json").write_text(json.dumps(SPECIAL, indent=2) + "\n", encoding="utf-8")


def check(out: Path) -> None:
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(out, local_files_only=True)
    assert len(tok) == 49408, len(tok)
    for text, ids in CHECKS.items():
        got = tok(text).input_ids
        assert got == ids, f"{text!r}: {got} != {ids}"
    sd2 = CLIPTokenizer.from_pretrained(out, local_files_only=True, pad_token="!")
    assert sd2.pad_token_id == 0
    assert sd2("a cat", padding="max_length", max_length=77).input_ids[-1] == 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--wheel", help="an open_clip_torch wheel (from pip download --no-deps)")
    source.add_argument("--gz", help="bpe_simple_vocab_16e6.txt.gz itself")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    gz = read_gz(args)
    digest = hashlib.md5(gz).hexdigest()
    if digest != GZ_MD5:
        print(f"warning: {GZ_NAME} md5 {digest}, expected {GZ_MD5}", file=sys.stderr)
    vocab, merges = build(gz)
    write(args.out, vocab, merges)
    check(args.out)
    print(f"wrote {args.out}: {len(vocab)} tokens, {len(merges)} merges; checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
