"""The seed of each image of a command. Pure: no torch.

With -S, every image of `-n N` is determined by the command (this shell's rule; InvokeAI 2.3 drew images
2..N at random):
- `-S s -n N`: image k (k = 0 .. N-1) has seed (s + k) mod 2^32, as AUTOMATIC1111 numbers a batch;
- `-S s -v A -n N`: every image keeps seed s and adds one sub-seed at weight A to the variation chain;
  image k's sub-seed is the first 4 bytes, big-endian, of sha256("s|chain|k"), where chain is the `-V`
  chain the command starts from as the canonical command writes it (`seed:weight,...`, empty without -V).
  Hashing the chain in keeps a sub-seed from repeating one already in the chain.
Without -S the seed is random, and so are the other images' seeds and sub-seeds. Each PNG records its own
seed and chain, so it replays alone.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import replace

from .request import GenerationRequest
from .switches import SEED_LIMIT


def batch_seed(seed: int, index: int) -> int:
    """The seed of image `index` (0-based) of `-S seed -n N`."""
    return (seed + index) % SEED_LIMIT


def chain_text(chain: tuple[tuple[int, float], ...]) -> str:
    return ",".join(f"{sub}:{weight!r}" for sub, weight in chain)


def variation_seed(seed: int, chain: tuple[tuple[int, float], ...], index: int) -> int:
    """The sub-seed image `index` (0-based) of `-S seed [-V chain] -v A -n N` adds to the chain."""
    digest = hashlib.sha256(f"{seed}|{chain_text(chain)}|{index}".encode("ascii")).digest()
    return int.from_bytes(digest[:4], "big")


def image_requests(request: GenerationRequest, seeded: bool) -> list[GenerationRequest]:
    """The request of each image of a command, as its PNG records it. `request.seed` is resolved; `seeded`
    says whether the command fixed it (-S, or a back-reference) rather than drawing it at random."""
    base = replace(request, iterations=None, grid=False, variation_amount=None)
    count = request.iterations or 1
    if request.variation_amount is not None:
        chain = request.with_variations or ()
        subs = [variation_seed(request.seed, chain, k) if seeded else secrets.randbelow(SEED_LIMIT)
                for k in range(count)]
        return [replace(base, with_variations=chain + ((sub, request.variation_amount),)) for sub in subs]
    seeds = [batch_seed(request.seed, k) if seeded or k == 0 else secrets.randbelow(SEED_LIMIT)
             for k in range(count)]
    return [replace(base, seed=seed) for seed in seeds]
