"""The seeds of the images of one command (invoke_shell/seeds.py): with -S every image of -n and of -v -n is
determined by the command by the documented rule; without -S they stay random."""

from __future__ import annotations

import hashlib

from invoke_shell.request import parse
from invoke_shell.seeds import batch_seed, image_requests, variation_seed
from invoke_shell.switches import SEED_LIMIT


def test_n_images_count_up_from_the_seed():
    requests = image_requests(parse('"fire" -s 2 -S 9 -n 3'), seeded=True)
    assert [r.seed for r in requests] == [9, 10, 11]
    assert all(r.iterations is None and r.with_variations is None for r in requests)  # each replays alone


def test_the_count_wraps_at_2_to_the_32():
    requests = image_requests(parse(f'"fire" -s 2 -S {SEED_LIMIT - 2} -n 3'), seeded=True)
    assert [r.seed for r in requests] == [SEED_LIMIT - 2, SEED_LIMIT - 1, 0]


def test_variation_sub_seeds_follow_the_documented_hash():
    requests = image_requests(parse('"fire" -s 2 -S 9 -v 0.3 -n 2'), seeded=True)
    expected = [int.from_bytes(hashlib.sha256(f"9||{k}".encode()).digest()[:4], "big") for k in range(2)]
    assert [r.with_variations for r in requests] == [((sub, 0.3),) for sub in expected]
    assert all(r.seed == 9 for r in requests)


def test_a_chain_changes_the_sub_seeds_so_none_repeats_the_chain():
    plain = variation_seed(9, (), 0)
    chained = image_requests(parse(f'"fire" -s 2 -S 9 -V {plain}:0.3 -v 0.2 -n 2'), seeded=True)
    expected = [int.from_bytes(hashlib.sha256(f"9|{plain}:0.3|{k}".encode()).digest()[:4], "big") for k in range(2)]
    assert [r.with_variations for r in chained] == [((plain, 0.3), (sub, 0.2)) for sub in expected]
    assert plain not in expected


def test_the_same_command_gives_the_same_requests():
    line = '"fire" -s 2 -S 123 -v 0.5 -n 4'
    assert image_requests(parse(line), seeded=True) == image_requests(parse(line), seeded=True)
    assert batch_seed(5, 0) == 5


def test_without_a_seed_the_other_images_stay_random():
    request = parse('"fire" -s 2 -S 77 -n 3')  # as resolve() leaves a drawn seed
    draws = {tuple(r.seed for r in image_requests(request, seeded=False)) for _ in range(3)}
    assert all(seeds[0] == 77 for seeds in draws) and len(draws) == 3
    variations = {image_requests(parse('"fire" -s 2 -S 77 -v 0.2'), seeded=False)[0].with_variations
                  for _ in range(3)}
    assert len(variations) == 3


def test_the_shell_uses_the_rule(shell):
    assert shell.execute('"fire" -s 2 -S 40 -n 2 -W 64 -H 64')
    assert [o.seed for o in shell.previous] == [40, 41]
    assert shell.execute('"fire" -s 2 -S 40 -v 0.25 -n 2 -W 64 -H 64')
    subs = [variation_seed(40, (), k) for k in range(2)]
    assert [o.path.rsplit(".", 2)[1] for o in shell.previous] == [str(s) for s in subs]
