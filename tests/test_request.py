"""The switch table and the line parser: every spelling, every error, and the round trip."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invoke_shell.errors import ParseError
from invoke_shell.request import Defaults, GenerationRequest, parse, to_command
from invoke_shell.switches import SAMPLERS, SWITCHES

# (switch dest, spellings that must all give `value`)
SPELLINGS = [
    ("steps", ["-s10", "-s 10", "--steps 10", "--steps=10", "-s=10"], 10),
    ("seed", ["-S42", "-S 42", "--seed 42", "--seed=42"], 42),
    ("seed", ["-S-1", "-S -1", "--seed -1", "--seed=-1"], -1),
    ("width", ["-W384", "-W 384", "--width 384", "--width=384"], 384),
    ("height", ["-H256", "-H 256", "--height 256", "--height=256"], 256),
    ("cfg_scale", ["-C5", "-C 5.0", "--cfg_scale 5", "--cfg_scale=5.0"], 5.0),
    ("sampler", ["-Ak_euler", "-A k_euler", "-m k_euler", "-mk_euler", "--sampler k_euler", "--sampler=k_euler",
                 "-A K_EULER"], "k_euler"),
    ("init_img", ["-Isketch.png", "-I sketch.png", "--init_img sketch.png", "--init_img=sketch.png"], "sketch.png"),
    ("init_img", ["-I -1", "-I-1", "--init_img=-1"], "-1"),
    ("strength", ["-I x.png -f0.7", "-I x.png -f 0.7", "-I x.png --strength 0.7", "-I x.png --strength=0.7"], 0.7),
    ("init_mask", ["-I x.png -Mmask.png", "-I x.png -M mask.png", "-I x.png --init_mask mask.png",
                   "-I x.png --init_mask=mask.png"], "mask.png"),
    ("invert_mask", ["-I x.png -M m.png --invert_mask"], True),
    ("fit", ["--fit", "-T", "-fit"], True),
    ("compensate_steps", ["--compensate_steps"], True),
    ("save_intermediates", ["--save_intermediates 5", "--save_intermediates=5"], 5),
    ("strip", ["--strip"], True),
    ("iterations", ["-n4", "-n 4", "--iterations 4", "--iterations=4"], 4),
    ("grid", ["-g", "--grid"], True),
    ("variation_amount", ["-v0.2", "-v 0.2", "--variation_amount 0.2", "--variation_amount=0.2"], 0.2),
    ("with_variations", ["-S 1 -V 7:0.5,8:0.25", "-S1 -V7:0.5,8:0.25", "-S 1 --with_variations=7:0.5,8:0.25",
                         "-S 1 -V '7,0.5;8,0.25'"], ((7, 0.5), (8, 0.25))),
    ("log_tokenization", ["-t", "--log_tokenization"], True),
    ("skip_normalize", ["-x", "--skip_normalize"], True),
    ("refiner", ["--refiner ref", "--refiner=ref"], "ref"),
    ("refiner_start", ["--refiner r --refiner_start 0.7", "--refiner r --refiner_start=0.7"], 0.7),
    ("png_compression", ["-z 9", "-z9", "--png_compression 9", "--png_compression=9"], 9),
    ("with_variations", ["-S 1 -V7,0.5,8,0.25", "-S 1 -V 7,0.5,8,0.25"], ((7, 0.5), (8, 0.25))),
    ("outdir", ["-o elsewhere", "-oelsewhere", "--outdir elsewhere", "--outdir=elsewhere"], "elsewhere"),
    ("clip_skip", ["--clip_skip 2", "--clip_skip=2"], 2),
    ("precision", ["--precision bfloat16", "--precision=bfloat16", "--precision BFLOAT16"], "bfloat16"),
    ("individual", ["-i", "--individual"], True),
    ("init_color", ["--init_color ref.png", "--init_color=ref.png"], "ref.png"),
    ("karras_max", ["--karras_max 29", "--karras_max=29"], 29),
    ("perlin", ["--perlin 0.3", "--perlin=0.3"], 0.3),
    ("threshold", ["--threshold 2", "--threshold=2.0"], 2.0),
    ("h_symmetry_time_pct", ["--h_symmetry_time_pct 0.4", "--h_symmetry_time_pct=0.4"], 0.4),
    ("v_symmetry_time_pct", ["--v_symmetry_time_pct 0.6", "--v_symmetry_time_pct=0.6"], 0.6),
    ("hires_fix", ["--hires_fix", "--hires_strength 0.5", "--hires_method lanczos"], True),
    ("hires_strength", ["--hires_fix --hires_strength 0.5", "--hires_strength=0.5"], 0.5),
    ("hires_method", ["--hires_fix --hires_method lanczos", "--hires_method=LANCZOS"], "lanczos"),
    ("seamless", ["--seamless", "--seamless_axes x"], True),
    ("seamless_axes", ["--seamless --seamless_axes x,y", "--seamless_axes=xy", "--seamless_axes 'y, x'"],
     ("x", "y")),
    ("fnformat", ["--fnformat {prefix}.{steps}.png", "--fnformat={prefix}.{steps}.png"], "{prefix}.{steps}.png"),
    ("outcrop", ["-I x.png -c top 64 left 32", "-I x.png --outcrop top 64 left 32", "-I x.png -c TOP 64 left 32 -s 5",
                 "-I x.png --outcrop='top 64 left 32'"], (("top", 64), ("left", 32))),
    ("out_direction", ["-I x.png -D right", "-I x.png --out_direction right -s 5"], ("right", None)),
    ("out_direction", ["-I x.png -D right 48", "-I x.png --out_direction=\"right 48\""], ("right", 48)),
    ("force_outpaint", ["-I x.png --force_outpaint"], True),
    ("seam_size", ["-I x.png -c top 8 --seam_size 24", "-I x.png -c top 8 --seam_size=24"], 24),
    ("seam_blur", ["-I x.png -c top 8 --seam_blur 4", "-I x.png -c top 8 --seam_blur=4"], 4),
    ("seam_strength", ["-I x.png -c top 8 --seam_strength 0.5", "-I x.png -c top 8 --seam_strength=0.5"], 0.5),
    ("seam_steps", ["-I x.png -c top 8 --seam_steps 6", "-I x.png -c top 8 --seam_steps=6"], 6),
    ("tile_size", ["-I x.png -c top 8 --tile_size 16", "-I x.png -c top 8 --tile_size=16"], 16),
    ("embiggen", ["-I x.png --embiggen 2.5 0.75 0.25", "-I x.png -embiggen 2.5 0.75 0.25 -s 5",
                  "-I x.png --embiggen='2.5 0.75 0.25'"], (2.5, 0.75, 0.25)),
    ("embiggen_tiles", ["-I x.png --embiggen 2 --embiggen_tiles 1 3 5", "-I x.png --embiggen 2 -embiggen_tiles 1 3 5"],
     (1, 3, 5)),
    ("embiggen_strength", ["-I x.png --embiggen 2 --embiggen_strength 0.3"], 0.3),
    ("text_mask", ["-I x.png -tm 'a red hat' 0.4", "-I x.png --text_mask 'a red hat' 0.4", "-I x.png -tm a red hat 0.4",
                   "-I x.png --text_mask='a red hat 0.4' -s 5"], ("a red hat", 0.4)),
    ("facetool_strength", ["-G 0.8", "--facetool_strength 0.8", "--gfpgan_strength 0.8", "-G0.8"], 0.8),
    ("facetool", ["-G 0.5 -ft codeformer", "-G 0.5 --facetool codeformer", "-G 0.5 -ftcodeformer"], "codeformer"),
    ("codeformer_fidelity", ["-G 0.5 -cf 0.3", "-G 0.5 --codeformer_fidelity 0.3"], 0.3),
    ("upscale", ["-U 4 0.6", "--upscale 4 0.6", "-U 4 0.6 -s 5", "--upscale='4 0.6'"], (4.0, 0.6)),
    ("upscaler", ["-U 2 --upscaler realesrgan-x4"], "realesrgan-x4"),
    ("save_original", ["-U 2 --save_original", "-U 2 -save_orig", "-G 0.5 --save_original"], True),
]


@pytest.mark.parametrize("dest,spelling,value", [(d, s, v) for d, ss, v in SPELLINGS for s in ss])
def test_every_spelling(dest, spelling, value):
    assert getattr(parse(f'"fire" {spelling}'), dest) == value
    assert getattr(parse(f"fire {spelling}"), dest) == value


def test_every_switch_has_a_spelling_test():
    assert {d for d, _, _ in SPELLINGS} == {sw.dest for sw in SWITCHES}


@pytest.mark.parametrize("line,prompt", [
    ('"fire" -s10', "fire"),
    ("a red car -s 25", "a red car"),
    ("a red car", "a red car"),
    ("a well-lit room -s 5", "a well-lit room"),       # '-l' inside a word is no switch
    ("'it''s' -s 5", "its"),
    ('"a # b" -s 3 # model_id=foo', "a # b"),
])
def test_prompt_split(line, prompt):
    assert parse(line).prompt == prompt


def test_negative_prompt():
    r = parse("a red car [blurry] on a road [ugly,  dark] -s 5")
    assert r.positive_prompt == "a red car on a road"
    assert r.negative_prompt == "blurry ugly, dark"


def test_defaults_fill_what_the_line_omits():
    d = Defaults(steps=12, cfg_scale=4.0, sampler="ddim", strength=0.5, width=128, height=96, fit=True)
    r = parse("fire -I x.png", d)
    assert (r.steps, r.cfg_scale, r.sampler, r.strength, r.width, r.height, r.fit) == (12, 4.0, "ddim", 0.5, 128, 96, True)
    assert parse("fire").strength is None            # strength only matters with an init image
    assert parse("fire -s 3", d).steps == 3            # the line wins over the launch default


@pytest.mark.parametrize("line,message", [
    ('"fire" -s 0', "-s/--steps must be in [1, 1000], got 0"),
    ('"fire" -s -3', "-s/--steps must be in [1, 1000], got -3"),
    ('"fire" -I x.png -f 1.3', "-f/--strength must be in (0, 1], got 1.3"),
    ('"fire" -I x.png -f 0', "-f/--strength must be in (0, 1], got 0.0"),
    ('"fire" -I x.png -f nan', "-f/--strength must be in (0, 1], got nan"),
    ('"fire" -C inf', "-C/--cfg_scale must be in (0, 100], got inf"),
    ('"fire" -W 0', "-W/--width must be in [8, 4096], got 0"),
    ('"fire" -A k_fancy', "-A/--sampler must be one of ddim, plms, k_lms"),
    ('"fire" -S 4294967296', "-S/--seed must be in [0, 2^32)"),
    ('"fire" -s ten', "-s/--steps expects an integer, got 'ten'"),
    ('"fire" -C high', "-C/--cfg_scale expects a number, got 'high'"),
    ('"fire" -s', "-s/--steps needs a value"),
    ('"fire" -I -s 5', "-I/--init_img needs a value"),
    ('"fire" --fit=yes', "--fit takes no value"),
    ('"fire" -q 3', "unknown switch '-q'"),
    ('"fire" --frobnicate', "unknown switch '--frobnicate'"),
    ('"fire" -G 1.5', "-G/--facetool_strength must be in [0, 1], got 1.5"),
    ('"fire" -cf 0.5', "-cf/--codeformer_fidelity shapes face restoration: add -G/--facetool_strength STRENGTH"),
    ('"fire" -U 2 3', "-U/--upscale: the strength must be in [0, 1], got 3.0"),
    ('"fire" -U 9', "-U/--upscale: the scale must be in [1, 8], got 9.0"),
    ('"fire" -U two', "-U/--upscale expects numbers (SCALE [STRENGTH]), got 'two'"),
    ('"fire" --upscaler x4', "--upscaler names the model -U/--upscale (or --embiggen SCALE, above 1) enlarges with: "
                             "add -U SCALE"),
    ('"fire" -U 2 --upscaler lanczos', "--upscaler lanczos is --embiggen's enlargement without a model"),
    ('"fire" --save_original', "--save_original keeps the picture from before -U/--upscale or -G"),
    ('"fire" -I x.png -M m.png -tm hand', "-tm/--text_mask and -M/--init_mask both give the mask"),
    ('"fire" -I x.png -tm hand 1.5', "-tm/--text_mask: the threshold must be in [0, 1], got 1.5"),
    ('"fire" --embiggen 2', "--embiggen enlarges a picture: add -I/--init_img"),
    ('"fire" -r 0.5', "-r (--inpaint_replace) is an InvokeAI switch"),
    ('"fire" --seam 5', "'--seam' could be --seam_blur, --seam_size, --seam_steps, --seam_strength, --seamless, "
                        "--seamless_axes: type more of it"),   # a prefix of several long switches
    ('"fire" --fac 0.5', "'--fac' could be --facetool, --facetool_strength: type more of it"),
    ('"fire" --use_mps', "--use_mps_noise (--use_mps_noise) is an InvokeAI switch"),
    ('"fire" -- 5', "unknown switch '--'"),
    ('"fire" -n 0', "-n/--iterations must be in [1, 64], got 0"),
    ('"fire" -v 1.5', "-v/--variation_amount must be in (0, 1], got 1.5"),
    ('"fire" -V 1:0.5', "-V/--with_variations needs -S/--seed"),
    ('"fire" -S 1 -V 1:2', "-V/--with_variations: weights must be in [0, 1], got 2.0"),
    ('"fire" -S 1 -V 1:0.5 -n 3', "-V/--with_variations without -v makes one image"),
    ('"fire" -S 1 -V seven', "-V/--with_variations expects seed:weight,seed:weight, got 'seven'"),
    ('"fire" -M mask.png', "-M/--init_mask needs an init image to repaint: add -I/--init_img"),
    ('"fire" --invert_mask', "--invert_mask needs an init image"),
    ('"fire" -tm hand', "-tm/--text_mask finds what to repaint in a picture: add -I/--init_img"),
    ('"fire -s 5', "check the quotes"),
    ("-s 10", "a prompt is needed"),
    ('""', "a prompt is needed"),
    ("fire -s 10 extra words", "unexpected 'extra' after the switches"),
    ("fire\x00 -s 3", "control character"),
])
def test_bad_lines_say_what_is_wrong(line, message):
    with pytest.raises(ParseError) as info:
        parse(line)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_canonical_command_matches_invokeai_order():
    r = parse('"fire" -f 0.7 -I sketch.png -A k_lms -H 384 -W 384 -S 1592514025 -s 10')
    assert to_command(r) == '"fire" -s 10 -S 1592514025 -W 384 -H 384 -C 7.5 -A k_lms -I sketch.png -f 0.7'


_text = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=40)
def _valid_request(kwargs: dict) -> GenerationRequest:
    if kwargs["with_variations"] is not None:      # a chain starts from an explicit seed, one image unless -v
        kwargs["seed"] = 5 if kwargs["seed"] is None else kwargs["seed"]
        if kwargs["variation_amount"] is None:
            kwargs["iterations"] = None
    if kwargs["init_img"] is None:                 # a mask belongs to an init image
        kwargs["init_mask"], kwargs["invert_mask"] = None, False
    return GenerationRequest(**kwargs)


requests = st.builds(
    dict,
    prompt=_text.filter(str.strip),
    steps=st.integers(1, 1000),
    cfg_scale=st.floats(0, 100, exclude_min=True),
    sampler=st.sampled_from(SAMPLERS),
    seed=st.none() | st.integers(0, 2**32 - 1) | st.integers(-5, -1),
    width=st.none() | st.integers(8, 4096),
    height=st.none() | st.integers(8, 4096),
    init_img=st.none() | _text.filter(str.strip) | st.sampled_from(["-1", "-2", "-xyz.png", "my sketch.png"]),
    strength=st.floats(0, 1, exclude_min=True),
    init_mask=st.none() | _text.filter(str.strip) | st.just("-mask.png"),
    invert_mask=st.booleans(),
    fit=st.booleans(),
    log_tokenization=st.booleans(),
    compensate_steps=st.booleans(),
    save_intermediates=st.none() | st.integers(1, 1000),
    strip=st.booleans(),
    iterations=st.none() | st.integers(1, 64),
    grid=st.booleans(),
    variation_amount=st.none() | st.floats(0, 1, exclude_min=True),
    with_variations=st.none() | st.lists(st.tuples(st.integers(0, 2**32 - 1), st.floats(0, 1)), min_size=1,
                                         max_size=3).map(tuple),
    outdir=st.none() | _text.filter(str.strip),
).map(_valid_request)


@settings(max_examples=400, deadline=None)
@given(requests, st.builds(Defaults, steps=st.integers(1, 99), sampler=st.sampled_from(SAMPLERS)))
def test_round_trip(request, defaults):
    assert parse(to_command(request), defaults) == request


def test_parsing_never_imports_torch():
    code = ("import sys, invoke_shell.request, invoke_shell.shell, invoke_shell.completion, invoke_shell.__main__;"
            "invoke_shell.request.parse('fire -s 3');"
            "bad = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_engine_never_imports_prompt_toolkit():
    code = ("import sys, invoke_shell.engine.generate, invoke_shell.engine.schedule, invoke_shell.models.manager,"
            " invoke_shell.outputs.save; sys.exit('prompt_toolkit' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


@pytest.mark.parametrize("line, dest, value", [
    ('"fire" --iter 4', "iterations", 4),                 # 2.3's argparse took unique prefixes
    ('"fire" --variation 0.2', "variation_amount", 0.2),
    ('"fire" --ste=5', "steps", 5),
    ('"fire" --hires_s 0.5', "hires_strength", 0.5),
])
def test_unique_prefixes_of_long_switches(line, dest, value):
    assert getattr(parse(line), dest) == value
