"""The batch helpers without a model: splitting a command file into runs, dealing them to processes, and
expanding sweep templates. (The 2-process run itself is in test_scaleout.py.)"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invoke_shell.batch import launched
from invoke_shell.batch.__main__ import main as batch_main
from invoke_shell.batch.split import deal, plan
from invoke_shell.batch.template import TemplateError, expand, load
from invoke_shell.request import parse
from invoke_shell.switches import SAMPLERS


def numbers(p, process):
    return [line.number for i in p.shares[process] for line in p.runs[i].lines]


# ---- splitting ----

def test_independent_commands_are_dealt_evenly():
    lines = [f'"fire" -s 5 -S {i}' for i in range(8)]
    p = plan(lines, 2)
    assert len(p.runs) == 8 and p.commands == 8
    assert p.shares == ((0, 2, 4, 6), (1, 3, 5, 7))
    assert p.describe() == "8 commands in 8 independent runs; process 0: 4, process 1: 4"


@pytest.mark.parametrize("ref", ["-S -1", "-I -1 -f 0.5", "-I -2 -f 0.5", "-S -1 -I -1 -f 0.3"])
def test_a_back_reference_stays_with_the_command_before_it(ref):
    p = plan(['"a" -S 1', '"b" -S 2 -n 2', f'"c" -S 3 {ref}', '"d" -S 4'], 3)
    assert [[l.number for l in r.lines] for r in p.runs] == [[1], [2, 3], [4]]


def test_bang_lines_go_with_the_next_command_and_switch_is_carried():
    lines = ["# comment", "", '"a" -S 1', "!switch m1", '"b" -S 2', "!models", '"c" -S 3', "!switch m2",
             '"d" -S -1', '"e" -S 5', "!switch m1", "// trailing"]
    p = plan(lines, 2)
    assert [[l.number for l in r.lines] for r in p.runs] == [[3], [4, 5], [6, 7, 8, 9], [10, 11]]
    assert [r.models for r in p.runs] == [(), (), ("m1",), ("m1", "m2")]
    assert p.commands == 9


def test_models_chain_keeps_each_name_once_last_use_last():
    p = plan(["!switch a", '"x" -S 1', "!switch b", '"x" -S 2', "!switch a", '"x" -S 3', "!switch c", '"x" -S 4'], 1)
    assert [r.models for r in p.runs] == [(), ("a",), ("a", "b"), ("b", "a")]


def test_lines_that_do_not_parse_do_not_break_a_chain():
    # -r fails to parse, so the -I -1 still means line 1's image, as in one shell
    p = plan(['"a" -S 1', '"b" -r 1', '"c" -S 3 -I -1 -f 0.5', '"d" -S 4'], 2)
    assert [[l.number for l in r.lines] for r in p.runs] == [[1, 2, 3], [4]]


@pytest.mark.parametrize("line, reason", [
    ("!replay more.txt", "line 2 has !replay, whose effects cannot be seen ahead"),
    ("!import_model /m", "line 2 has !import_model, whose effects cannot be seen ahead"),
    ("!fix 000001.1.png -G 0.5", "line 2 has !fix, whose effects cannot be seen ahead"),
])
def test_lines_with_unseen_effects_make_the_file_one_run(line, reason):
    p = plan(['"a" -S 1', line, '"b" -S 2', '"c" -S 3'], 2)
    assert len(p.runs) == 1 and [l.number for l in p.runs[0].lines] == [1, 2, 3, 4]
    assert p.whole_file_reason == reason
    assert p.describe() == f"4 commands in 1 run ({reason}); process 0: 4 (1 run), process 1: idle"


def test_an_init_image_that_does_not_exist_yet_makes_the_file_one_run():
    lines = ['"a" -S 1', '"b" -S 2 -I outputs/000001.1.png -f 0.5', '"c" -S 3 -I sketch.png -f 0.5']
    assert len(plan(lines, 2, exists=lambda p: True).runs) == 3
    p = plan(lines, 2, exists=lambda p: p == "sketch.png")
    assert len(p.runs) == 1
    assert p.whole_file_reason.startswith("line 2: -I outputs/000001.1.png does not exist yet")


def test_q_ends_the_file_and_unseeded_commands_are_counted():
    p = plan(['"a" -S 1', '"b"', "q", '"c" -S 3'], 2)
    assert p.commands == 2 and p.stop.number == 3 and p.unseeded == 1
    assert sorted(numbers(p, 0) + numbers(p, 1)) == [1, 2]


def test_dealing_is_heaviest_first_and_deterministic():
    lines = ['"a" -s 40 -S 1', '"b" -s 10 -S 2', '"c" -s 10 -S 3', '"d" -s 10 -S 4', '"e" -s 10 -S 5 -n 2']
    p = plan(lines, 2)
    assert [r.weight for r in p.runs] == [40, 10, 10, 10, 20]
    assert p.shares == ((0, 3), (1, 2, 4))  # loads 50 and 40
    assert plan(lines, 2) == p
    img2img = plan(['"a" -s 10 -S 1 -I x.png -f 0.5', '"a" -s 10 -S 1 -I x.png -f 0.5 --compensate_steps'], 1)
    assert [r.weight for r in img2img.runs] == [5, 10]


def test_more_processes_than_runs_leaves_some_idle():
    p = plan(['"a" -S 1', '"b" -S -1'], 3)
    assert p.shares == ((0,), (), ())
    assert p.describe() == "2 commands in 1 independent run; process 0: 2 (1 run), process 1: idle, process 2: idle"
    assert deal((), 2) == ((), ())


KINDS = st.sampled_from(["gen", "gen", "gen", "ref_seed", "ref_img", "switch_a", "switch_b", "switch_bad",
                         "models", "bad", "comment"])
TEXT = {"gen": '"x" -S {n}', "ref_seed": '"x" -S -1', "ref_img": '"x" -S {n} -I -1 -f 0.5', "switch_a": "!switch a",
        "switch_b": "!switch b", "switch_bad": "!switch bad", "models": "!models", "bad": '"x" -r 1',
        "comment": "# note"}


def one_shell(lines):
    """What a single shell would see: for each generation line, the model in force and the line whose
    images a back-reference means. `bad` never loads, as a model that fails."""
    model, previous, seen = "launch", None, {}
    for number, text in enumerate(lines, 1):
        if text.startswith("!switch"):
            if text != "!switch bad":
                model = text.split()[1]
        elif text.startswith('"x" -S') and "-r" not in text:
            seen[number] = (model, previous if "-1" in text else None)
            previous = number
    return seen


def per_run(p):
    """The same, as the worker sees it: each run starts on the last loadable model it carries."""
    seen = {}
    for run in p.runs:
        model = next((m for m in reversed(("launch",) + run.models) if m != "bad"), "launch")
        previous = None
        for line in run.lines:
            if line.text.startswith("!switch"):
                if line.text != "!switch bad":
                    model = line.text.split()[1]
            elif line.text.startswith('"x" -S') and "-r" not in line.text:
                seen[line.number] = (model, previous if "-1" in line.text else None)
                previous = line.number
    return seen


@settings(max_examples=300, deadline=None)
@given(st.lists(KINDS, max_size=30), st.integers(1, 4))
def test_every_line_runs_once_on_the_model_and_images_a_single_shell_would_use(kinds, processes):
    lines = [TEXT[k].format(n=i) for i, k in enumerate(kinds)]
    p = plan(lines, processes)
    everywhere = sorted(n for proc in range(processes) for n in numbers(p, proc))
    assert everywhere == [i for i, k in enumerate(kinds, 1) if k != "comment"]
    expected = one_shell(lines)
    got = per_run(p)
    # a back-reference at the very start has nothing to refer to in either case
    assert got == expected


# ---- launch detection ----

def test_launched_only_under_accelerate(monkeypatch):
    for name in ("WORLD_SIZE", "ACCELERATE_MIXED_PRECISION", "ACCELERATE_USE_CPU"):
        monkeypatch.delenv(name, raising=False)
    assert not launched()
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not launched()
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert launched()
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    assert launched()


# ---- templates ----

def test_strength_versus_steps_sweep_is_one_file(tmp_path, capsys):
    (tmp_path / "sweep.yaml").write_text(
        "prompt: fire\nseed: 1592514025\ninit_img: sketch.png\nstrengths: [0.4, 0.7]\nsteps: [10, 20, 30]\n"
        "switches: -W 64 -H 64 -A k_lms\n")
    assert batch_main(["expand", str(tmp_path / "sweep.yaml")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("# 6 commands expanded (product) from")
    assert out[1:3] == ['"fire" -s 10 -S 1592514025 -W 64 -H 64 -C 7.5 -A k_lms -I sketch.png -f 0.4',
                        '"fire" -s 20 -S 1592514025 -W 64 -H 64 -C 7.5 -A k_lms -I sketch.png -f 0.4']
    assert out[6] == '"fire" -s 30 -S 1592514025 -W 64 -H 64 -C 7.5 -A k_lms -I sketch.png -f 0.7'
    assert len(plan(out, 2).runs) == 6  # every line independent


def test_zip_vars_and_text_values():
    lines = expand({"mode": "zip", "prompt": "a {color} star [dark]", "vars": {"color": ["red", "blue"]},
                    "seeds": [1, "2"], "samplers": ["K_EULER", "ddim"], "cfg_scale": 5, "fit": True,
                    "init_img": "s.png", "strength": "0.5"})
    assert lines == ['"a red star [dark]" -s 50 -S 1 -C 5.0 -A k_euler -I s.png -f 0.5 --fit',
                     '"a blue star [dark]" -s 50 -S 2 -C 5.0 -A ddim -I s.png -f 0.5 --fit']
    for line in lines:
        parse(line)


def test_product_order_first_key_slowest_and_json(tmp_path):
    (tmp_path / "t.json").write_text(json.dumps({"prompts": ["a", "b"], "seeds": [1, 2], "steps": 3}))
    lines = expand(load(str(tmp_path / "t.json")))
    assert [(parse(l).prompt, parse(l).seed) for l in lines] == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]


@pytest.mark.parametrize("template, message", [
    ({"prompt": "fire", "init_img": "s.png", "strengths": [0.3, 1.3]},
     "t.yaml: strengths: -f/--strength must be in (0, 1], got 1.3"),
    ({"prompt": "fire", "samplers": ["k_lms", "dpm_fast"]},
     f"t.yaml: samplers: -A/--sampler must be one of {', '.join(SAMPLERS)}; got 'dpm_fast'"),
    ({"prompt": "fire", "steps": [10, 2.5]}, "t.yaml: steps: -s/--steps expects an integer, got 2.5"),
    ({"prompt": "fire", "seeds": [1, 2], "steps": [1, 2, 3], "mode": "zip"},
     "t.yaml: mode zip needs lists of one length; got seeds 2, steps 3"),
    ({"prompt": "fire", "mode": "cross"}, "t.yaml: mode must be one of product, zip; got 'cross'"),
    ({"prompt": "fire", "strength": 0.5}, "t.yaml: strength: needs init_img (the strength is img2img's noise level)"),
    ({"prompt": "fire", "seeds": []}, "t.yaml: seeds: the list is empty"),
    ({"prompt": "fire", "seed": 1, "switches": "-S 2"}, "t.yaml: switches and seed both set seed; keep one"),
    ({"prompt": "fire", "switches": "-r 1"},
     "t.yaml: switches: -r (--inpaint_replace) is an InvokeAI switch that invoke-shell does not support"),
    ({"prompt": "fire", "fit": "yes"}, "t.yaml: fit: --fit is a flag: give true or false, got 'yes'"),
    ({"seeds": [1]}, "t.yaml: no prompt: give prompt: TEXT or prompts: [TEXT, ...]"),
    ({"prompt": "fire", "with_variations": "1:0.5", "seed": None}, "t.yaml: seed: expected single values, got None"),
])
def test_a_bad_template_is_one_line_naming_the_key(template, message):
    with pytest.raises(TemplateError) as info:
        expand(template, "t.yaml")
    assert str(info.value) == message


def test_unknown_key_lists_the_keys():
    with pytest.raises(TemplateError, match=r"^t.yaml: unknown key 'seedz'; use mode, prompt\(s\), vars, switches or "
                                            r"a switch's long name: steps, seed, "):
        expand({"prompt": "fire", "seedz": [1]}, "t.yaml")


def test_bad_files_are_one_line(tmp_path, capsys):
    (tmp_path / "t.yaml").write_text("prompt: [unclosed\n")
    assert batch_main(["expand", str(tmp_path / "t.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("invoke-shell batch: ") and "malformed YAML at line" in err and len(err.splitlines()) == 1
    (tmp_path / "l.yaml").write_text("- fire\n")
    assert batch_main(["expand", str(tmp_path / "l.yaml")]) == 2
    assert "expected a mapping of keys" in capsys.readouterr().err


def test_plan_subcommand_shows_the_division(tmp_path, capsys):
    (tmp_path / "cmds.txt").write_text('"a" -S 1\n"b" -S -1\n"c" -S 3\n!switch m\n"d" -S 4\nq\n')
    assert batch_main(["plan", str(tmp_path / "cmds.txt"), "-n", "2"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "5 commands in 3 independent runs; process 0: 2 (1 run), process 1: 3 (2 runs)",
        "  process 0: lines 1-2",
        "  process 1: lines 3-5",
        "  line 6 (q) ends the file; the lines after it do not run",
    ]
