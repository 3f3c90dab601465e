"""Fuzzing inside the suite: the line parser and every metadata reader, fed arbitrary input, either succeed
or raise the shell's own ParseError (one line); nothing else escapes."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invoke_shell.errors import ParseError
from invoke_shell.outputs.readers import FAMILIES
from invoke_shell.request import parse, to_command
from invoke_shell.switches import BY_SPELLING, UNSUPPORTED

SPELLINGS = sorted(BY_SPELLING) + sorted(UNSUPPORTED)
# lines built from the pieces real lines are made of, so that deep paths get exercised
pieces = st.one_of(st.sampled_from(SPELLINGS), st.text(max_size=12),
                   st.sampled_from(['"', "'", "=", "-1", "0.7", "nan", "1e999", "k_lms", "[neg]", "#", "\\", ";"]),
                   st.integers(-2**40, 2**40).map(str), st.floats(allow_nan=True).map(repr))
lines = st.one_of(st.text(max_size=200), st.lists(pieces, max_size=12).map(" ".join))


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines)
def test_line_parser(line):
    try:
        request = parse(line)
    except ParseError as exc:
        assert "\n" not in str(exc)
        return
    assert parse(to_command(request)) == request


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(
        st.sampled_from(["image", "images", "prompt", "seed", "steps", "cfg_scale", "sampler", "width", "height",
                         "init_img", "strength", "variations", "inputs", "class_type", "text", "positive_prompt",
                         "negative_prompt", "scheduler", "model", "0", "1", "3"]) | st.text(max_size=8),
        children, max_size=6),
    max_leaves=25)
chunk_texts = st.one_of(st.text(max_size=300), json_values.map(json.dumps),
                        st.lists(st.sampled_from(["Steps: 20", "Sampler: Euler a", "CFG scale: 7", "Seed: 5",
                                                  "Size: 64x64", "Negative prompt: x", "Denoising strength: 2",
                                                  "Seed: -1", "Size: 0x99999", '"quoted, "', "fire", "\n", ", "]),
                                 max_size=10).map("".join))


@pytest.mark.parametrize("family", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_metadata_readers(family):
    chunk, what, label, reader = family

    @settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(chunk_texts)
    def check(text):
        try:
            command, notes, foreign = reader(text)
        except ParseError as exc:
            assert "\n" not in str(exc)
            return
        assert to_command(parse(command)) == command
        assert all(isinstance(n, str) for n in notes)

    check()
