"""A CLIPTokenizer over the dataset vocabulary: byte-level base tokens plus BPE merges
that make every vocabulary word a single token. Unknown words fall back to characters."""
from __future__ import annotations

from collections import Counter

from transformers import CLIPTokenizer

from .data import VOCABULARY


def bytes_to_unicode() -> dict[int, str]:
    """openai CLIP's reversible byte -> printable unicode table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def train_merges(words) -> list[tuple[str, str]]:
    """Plain BPE training on the word list until every word is one symbol."""
    seqs = {w: list(w[:-1]) + [w[-1] + "</w>"] for w in words}
    merges: list[tuple[str, str]] = []
    while True:
        counts: Counter = Counter()
        for s in seqs.values():
            for a, b in zip(s, s[1:]):
                counts[(a, b)] += 1
        if not counts:
            return merges
        best = max(counts.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        for w, s in seqs.items():
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(s[i] + s[i + 1])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out


def build_tokenizer(words=VOCABULARY) -> CLIPTokenizer:
    chars = list(bytes_to_unicode().values())
    merges = train_merges(list(words))
    vocab_list = chars + [c + "</w>" for c in chars]
    for a, b in merges:
        t = a + b
        if t not in vocab_list:
            vocab_list.append(t)
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(vocab_list)}
    tok = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)
    for w in words:
        ids = tok(w, add_special_tokens=False).input_ids
        if len(ids) != 1:
            raise RuntimeError(f"tokenizer: {w!r} is not one token: {ids}")
    return tok
