"""LoRAs and textual-inversion embeddings, the way a user meets them: files in loras/ and embeddings/, named in
the prompt, run through the shell, recorded in the PNG and fetched back."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from invoke_shell.engine import adapters
from invoke_shell.models.library import Library
from invoke_shell.outputs.pngio import read_text_chunks
from invoke_shell.prompt_extras import extract, legacy_blend
from invoke_shell.toymodel.adapters import lora_layers, write_embedding, write_lora

SIZE = "-s 4 -S 7 -W 64 -H 64"


@pytest.fixture(scope="module")
def tiny(cache_dir):
    """A manager of its own with the tiny model: LoRA layers injected here never reach the shared one."""
    from invoke_shell.models.manager import ModelManager
    from invoke_shell.models.registry import BUILTIN

    manager = ModelManager(BUILTIN, device="cpu", precision="float32")
    manager.activate("tiny")
    return manager


@pytest.fixture(scope="module")
def folders(tiny, tmp_path_factory):
    """loras/ and embeddings/ with the same LoRA in every format, a second LoRA, and embeddings."""
    root = tmp_path_factory.mktemp("adapters")
    loras, embeddings = root / "loras", root / "embeddings"
    loras.mkdir()
    embeddings.mkdir()
    pipe = tiny.active.txt2img
    layers = lora_layers(pipe.unet, pipe.text_encoder, seed=1)
    for fmt in ("peft", "diffusers", "kohya"):
        write_lora(layers, loras / f"style_{fmt}.safetensors", fmt)
    write_lora(layers, loras / "style_pt.pt", "kohya")
    folder = loras / "style_folder"  # diffusers' save_lora_weights folder: named by the folder
    folder.mkdir()
    write_lora(layers, folder / "pytorch_lora_weights.safetensors", "peft")
    write_lora(lora_layers(pipe.unet, pipe.text_encoder, seed=2), loras / "other.safetensors", "kohya")
    write_lora(lora_layers(pipe.unet, None, seed=3), loras / "unet_only.safetensors", "peft")
    write_lora(lora_layers(None, pipe.text_encoder, seed=4), loras / "text_only.safetensors", "peft")
    width = pipe.text_encoder.get_input_embeddings().weight.shape[1]
    generator = torch.Generator().manual_seed(5)
    write_embedding(torch.randn(1, width, generator=generator), embeddings / "one.safetensors", "diffusers",
                    "<one-token>")
    write_embedding(torch.randn(3, width, generator=generator), embeddings / "three.pt", "a1111")
    write_embedding(torch.randn(2, width, generator=generator), embeddings / "two.safetensors", "a1111")
    return loras, embeddings


@pytest.fixture
def session(tiny, folders, tmp_path):
    from invoke_shell.shell import Shell

    said: list[str] = []
    shell = Shell(tiny, outdir=str(tmp_path / "out"), say=said.append, model="tiny", library=Library([folders[0]], [folders[1]]))
    shell.said = said
    return shell


def run(shell, line: str) -> np.ndarray:
    """Run a generation line; the pixels of its (one) image."""
    before = len(shell.said)
    assert shell.execute(line), shell.said[before:]
    return np.asarray(Image.open(shell.previous[-1].path))


def fails(shell, line: str) -> str:
    before = len(shell.said)
    written = sorted(p.name for p in (shell_outdir(shell)).glob("*.png"))
    assert not shell.execute(line)
    assert sorted(p.name for p in shell_outdir(shell).glob("*.png")) == written, "nothing is written"
    lines = [s for s in shell.said[before:] if s.startswith(("error", "unexpected"))]
    assert len(lines) == 1 and lines[0].startswith("error: "), shell.said[before:]
    return lines[0]


def shell_outdir(shell):
    from pathlib import Path

    path = Path(shell.outdir)
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---------------------------------------------------------------- the prompt syntax (no torch needed)


@pytest.mark.parametrize("prompt,text,loras,triggers", [
    ("fire withLora(style,0.8)", "fire", (("style", 0.8),), ()),
    ("fire withLora(style)", "fire", (("style", 1.0),), ()),
    ("fire useLora( style , -0.5 )", "fire", (("style", -0.5),), ()),
    ("fire <lora:style:0.8> <lora:b>", "fire", (("style", 0.8), ("b", 1.0)), ()),
    ("a <one> and <two-x> cat <lora:b:.5>", "a <one> and <two-x> cat", (("b", 0.5),), ("one", "two-x")),
    ("a <one> <one>", "a <one> <one>", (), ("one",)),
])
def test_extract(prompt, text, loras, triggers):
    extras = extract(prompt)
    assert extras.text == text
    assert tuple((u.name, u.weight) for u in extras.loras) == loras
    assert extras.triggers == triggers


@pytest.mark.parametrize("prompt,message", [
    ("fire withLora(style,3)", "a LoRA weight must be in [-2, 2], got 3"),
    ("fire <lora:style:x>", "the weight should be a number, got 'x'"),
    ("fire <lora:style:0.5:0.5>", "give one weight"),
    ("fire withLora(a b,1)", "a LoRA name is a file name"),
    ("fire withLora(s,1) <lora:s:0.5>", "LoRA 's' is named twice"),
])
def test_extract_refuses(prompt, message):
    from invoke_shell.errors import ParseError
    from invoke_shell.request import parse

    with pytest.raises(ParseError, match=None) as info:
        parse(f'"{prompt}" -s 5')
    assert message in str(info.value)


@pytest.mark.parametrize("text,skip,blend", [
    ("a cat:0.5 a dog:0.5", False, '("a cat", "a dog").blend(0.5, 0.5)'),
    ("fire:1 ice:3", True, '("fire", "ice").blend(1, 3, no_normalize)'),
    ("16\\:9 photo:2 sketch", False, '("16:9 photo", "sketch").blend(2, 1)'),
    ("photo: a cat", False, None),
    ("a cat", False, None),
])
def test_legacy_blend(text, skip, blend):
    assert legacy_blend(text, skip) == blend


# ---------------------------------------------------------------- LoRAs through the shell


def test_every_format_gives_the_same_picture_and_the_next_command_is_untouched(session):
    plain = run(session, f'"fire" {SIZE}')
    pictures = {fmt: run(session, f'"fire withLora(style_{fmt},0.8)" {SIZE}')
                for fmt in ("peft", "diffusers", "kohya", "pt", "folder")}
    for fmt, picture in pictures.items():
        assert np.abs(picture.astype(int) - pictures["peft"]).max() <= 1, fmt
    assert np.abs(pictures["peft"].astype(int) - plain).mean() > 2, "the LoRA changes the picture"
    assert np.array_equal(run(session, f'"fire" {SIZE}'), plain), "the next command gives exactly the same pixels"
    a1111 = run(session, f'"fire <lora:style_peft:0.8>" {SIZE}')
    assert np.array_equal(a1111, pictures["peft"])


def test_weights_and_several_loras(session):
    one = run(session, f'"fire withLora(style_peft,0.8)" {SIZE}')
    half = run(session, f'"fire withLora(style_peft,0.4)" {SIZE}')
    both = run(session, f'"fire withLora(style_peft,0.8) withLora(other,0.8)" {SIZE}')
    other = run(session, f'"fire withLora(other,0.8)" {SIZE}')
    assert not np.array_equal(one, half)
    assert not np.array_equal(both, one) and not np.array_equal(both, other)


def test_unet_and_text_encoder_parts_each_apply(session):
    from invoke_shell.engine.prompts import conditioning

    plain = run(session, f'"fire" {SIZE}')
    model = session.manager.active
    for name in ("unet_only", "text_only"):
        assert not np.array_equal(run(session, f'"fire withLora({name})" {SIZE}'), plain), name
    adapters.apply(model, extract("fire"), session.library)
    base, _ = conditioning(model, "fire", None)
    adapters.apply(model, extract("fire withLora(text_only)"), session.library)
    injected = [m for m in model.txt2img.text_encoder.modules() if hasattr(m, "lora_A") and m.lora_A]
    assert len(injected) == 2 * 4, "every layer of the file (2 layers x q, k, v, out) reached the text encoder"
    changed, _ = conditioning(model, "fire", None)
    adapters.apply(model, extract("fire"), session.library)
    assert not torch.equal(base, changed), "the text encoder LoRA changes the conditioning"
    assert torch.equal(conditioning(model, "fire", None)[0], base)


def test_loras_stay_cached_lru(session, monkeypatch):
    reads = []
    original = adapters.read_weights
    monkeypatch.setattr(adapters, "read_weights", lambda path, what: reads.append(path.name) or original(path, what))
    model = session.manager.active
    for name in ("style_peft", "other", "style_peft"):
        adapters.apply(model, extract(f"x withLora({name})"), session.library)
    assert reads.count("style_peft.safetensors") <= 1 and reads.count("other.safetensors") <= 1
    for name in ("style_diffusers", "style_kohya", "style_pt", "unet_only", "text_only"):
        adapters.apply(model, extract(f"x withLora({name})"), session.library)
    state = adapters.state(model)
    assert len(state.loras) == adapters.MAX_LORAS
    listed = {a for names in model.txt2img.get_list_adapters().values() for a in names}
    assert listed == {adapter for adapter, _ in state.loras.values()}, "dropped LoRAs leave the model"
    adapters.apply(model, extract("x"), session.library)


def test_unknown_damaged_and_out_of_range_loras_are_one_line(session, folders, tmp_path):
    plain = run(session, f'"fire" {SIZE}')
    assert "no LoRA named 'nope' in" in fails(session, f'"fire withLora(nope)" {SIZE}')
    assert str(folders[0]) in fails(session, f'"fire <lora:nope:0.5>" {SIZE}')
    assert "must be in [-2, 2], got 5" in fails(session, f'"fire withLora(style_peft,5)" {SIZE}')
    damaged = folders[0] / "damaged.safetensors"
    damaged.write_bytes((folders[0] / "style_peft.safetensors").read_bytes()[:300])
    try:
        assert "not a valid safetensors file" in fails(session, f'"fire withLora(damaged)" {SIZE}')
    finally:
        damaged.unlink()
    assert np.array_equal(run(session, f'"fire" {SIZE}'), plain), "the model is as it was"


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # unpickling this would create the marker file
        return (open, (str(self.marker), "w"))


def test_pickle_payloads_are_refused_and_run_nothing(session, folders, tmp_path):
    marker = tmp_path / "pwned"
    lora = folders[0] / "evil.pt"
    embedding = folders[1] / "evil.pt"
    torch.save({"lora_unet_x.lora_down.weight": torch.zeros(1), "payload": _Payload(marker)}, lora)
    torch.save({"string_to_param": {"*": torch.zeros(1, 32)}, "payload": _Payload(marker)}, embedding)
    try:
        assert "refusing to load evil.pt: its pickle would run" in fails(session, f'"fire withLora(evil)" {SIZE}')
        assert "refusing to load evil.pt" in fails(session, f'"fire <evil>" {SIZE}')
        lora.write_bytes(pickle.dumps(_Payload(marker), protocol=2))
        assert "error" in fails(session, f'"fire withLora(evil)" {SIZE}')
    finally:
        lora.unlink()
        embedding.unlink()
    assert not marker.exists()


def _unet_of_width(width: int):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=8, in_channels=4, layers_per_block=1, block_out_channels=(32, 64), norm_num_groups=8,
        cross_attention_dim=width, attention_head_dim=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))


def test_a_lora_for_another_family_is_one_line(session, folders):
    plain = run(session, f'"fire" {SIZE}')
    sd1 = folders[0] / "for_sd1.safetensors"
    write_lora(lora_layers(_unet_of_width(768), None, rank=2), sd1, "kohya")
    xl = folders[0] / "for_xl.safetensors"
    layers = lora_layers(session.manager.active.txt2img.unet, None, rank=2)
    layers["text_encoder_2.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight"] = torch.zeros(2, 32)
    write_lora(layers, xl, "peft")
    try:
        line = fails(session, f'"fire withLora(for_sd1)" {SIZE}')
        assert "is for SD 1.x (cross-attention 768 wide)" in line and "model 'tiny'" in line and "(32 wide)" in line
        assert "is for SDXL" in fails(session, f'"fire <lora:for_xl:1>" {SIZE}')
    finally:
        sd1.unlink()
        xl.unlink()
    assert np.array_equal(run(session, f'"fire" {SIZE}'), plain)


# ---------------------------------------------------------------- embeddings


def test_embeddings_in_every_format(session):
    plain = run(session, f'"a fire" {SIZE}')
    model = session.manager.active
    for trigger in ("one", "one-token", "three", "two"):
        picture = run(session, f'"a <{trigger}> fire" {SIZE}')
        assert not np.array_equal(picture, plain), trigger
    same = run(session, f'"a <one-token> fire" {SIZE}')
    assert np.array_equal(same, run(session, f'"a <one-token> fire" {SIZE}'))
    assert np.array_equal(run(session, f'"a fire" {SIZE}'), plain), "added tokens change nothing else"
    from invoke_shell.engine.prompts import _compel

    def positions(text):
        return len(_compel(model).conditioning_provider.get_token_ids([text], include_start_and_end_markers=False)[0])

    assert positions("a <three> fire") == positions("a <one> fire") + 2, "a 3-vector embedding takes 3 positions"


def test_embedding_problems_are_one_line(session, folders):
    assert "no embedding named 'missing'" in fails(session, f'"a <missing> fire" {SIZE}')
    wide = folders[1] / "wide.safetensors"
    write_embedding(torch.zeros(1, 768), wide, "a1111")
    xl = folders[1] / "xl.safetensors"
    from safetensors.torch import save_file

    save_file({"clip_l": torch.zeros(1, 768), "clip_g": torch.zeros(1, 1280)}, str(xl))
    clash = folders[1] / "clash.safetensors"
    write_embedding(torch.zeros(1, 32), clash, "a1111")
    session.manager.active.txt2img.tokenizer.add_tokens(["<clash>"])
    try:
        line = fails(session, f'"a <wide> fire" {SIZE}')
        assert "is for SD 1.x (768 wide)" in line and "32 wide" in line
        assert "is an SDXL embedding" in fails(session, f'"a <xl> fire" {SIZE}')
        assert "a token the model's tokenizer already knows" in fails(session, f'"a <clash> fire" {SIZE}')
    finally:
        for path in (wide, xl, clash):
            path.unlink()


def test_files_added_while_running_are_found(session, folders):
    late = folders[1] / "late.safetensors"
    assert "no embedding named 'late'" in fails(session, f'"a <late> fire" {SIZE}')
    write_embedding(torch.ones(1, 32), late, "a1111")
    try:
        session.execute("!triggers")
        assert any("<late>" in line for line in session.said[-20:])
        run(session, f'"a <late> fire" {SIZE}')
    finally:
        late.unlink()


def test_triggers_lists_names_with_their_family(session):
    before = len(session.said)
    assert session.execute("!triggers")
    said = session.said[before:]
    assert said[0].startswith("embeddings in ") and any(line.startswith("LoRAs in ") for line in said)
    three = next(line for line in said if "<three>" in line)
    assert "3 vectors" in three and "fits tiny" in three
    one = next(line for line in said if "<one>" in line)
    assert "its own token <one-token>" in one
    style = next(line for line in said if line.strip().startswith("style_kohya"))
    assert "fits tiny" in style


def test_completion_offers_the_names(session):
    from prompt_toolkit.document import Document

    from invoke_shell.completion import ShellCompleter

    completer = ShellCompleter(session.commands, adapter_names=lambda kind: list(session.library.files(kind)))

    def offered(text):
        return [c.text for c in completer.get_completions(Document(text, len(text)), None)]

    assert "style_kohya" in offered("fire withLora(sty")
    assert offered("fire <lora:oth") == ["other"]
    assert "three>" in offered("a <th") and "lora:" in offered("a <")
    assert offered("fire -s") and "three>" not in offered("fire -s")


# ---------------------------------------------------------------- metadata and !fetch


def test_metadata_records_each_lora_and_embedding(session, folders):
    run(session, f'"a <two> fire withLora(style_kohya,0.7) [smoke]" {SIZE}')
    path = session.previous[-1].path
    chunks = read_text_chunks(path)
    assert chunks["Dream"].startswith('"a <two> fire withLora(style_kohya,0.7) [smoke]"'), "the prompt as typed"
    image = json.loads(chunks["sd-metadata"])["image"]
    sha, short = session.library.hashes(session.library.find("lora", "style_kohya"))
    assert image["loras"] == [{"name": "style_kohya", "weight": 0.7, "sha256": sha, "short_hash": short}]
    assert image["embeddings"][0]["name"] == "two" and len(image["embeddings"][0]["sha256"]) == 64
    parameters = chunks["parameters"]
    assert parameters.startswith("a two fire <lora:style_kohya:0.7>\nNegative prompt: smoke")
    assert f"Lora hashes: \"style_kohya: {short}\"" in parameters and "TI hashes: \"two: " in parameters
    # !fetch rebuilds it, and says nothing while the files are those the image was made with
    before = len(session.said)
    session.execute(f"!fetch {path}")
    assert not any(line.startswith("note:") for line in session.said[before:]), session.said[before:]


def _a1111_png(path, parameters: str):
    from invoke_shell.outputs.pngio import write_png

    write_png(str(path), Image.new("RGB", (64, 64)), {"parameters": parameters})
    return path


def test_fetch_of_an_a1111_png_with_loras_and_embeddings(session, tmp_path):
    short = session.library.hashes(session.library.find("lora", "other"))[1]
    png = _a1111_png(tmp_path / "a1111.png", (
        "a two fire <lora:other:0.7> <lora:gone:0.5> <lyco:x:1>\nNegative prompt: smoke\n"
        f"Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 64x64, Model: m, "
        f"Lora hashes: \"other: {short}, gone: 0123456789ab\", TI hashes: \"two: 0123456789ab\""))
    before = len(session.said)
    session.execute(f"!fetch {png}")
    said = session.said[before:]
    assert session.prefill.startswith('"a <two> fire <lora:other:0.7> <lora:gone:0.5> [smoke]"'), session.prefill
    assert any("LoRA gone is not in" in line for line in said), said
    assert any("embedding <two> here" in line and "is not the file the image was made with" in line
               for line in said), said
    assert not any("LoRA other" in line for line in said)
    assert any("<lyco:x:1>" in line for line in said if line.startswith("not carried over"))
    run(session, session.prefill.replace("<lora:gone:0.5> ", "").replace("-s 20", "-s 4"))


def test_fetch_of_an_invokeai3_png_with_loras(session, tmp_path):
    from invoke_shell.outputs.pngio import write_png

    meta = {"positive_prompt": "a fire", "negative_prompt": "", "seed": 3, "steps": 4, "cfg_scale": 7,
            "width": 64, "height": 64, "scheduler": "euler", "model": {"name": "m"},
            "loras": [{"model": {"name": "style_peft"}, "weight": 0.6}]}
    write_png(str(tmp_path / "i3.png"), Image.new("RGB", (64, 64)), {"invokeai_metadata": json.dumps(meta)})
    session.execute(f"!fetch {tmp_path / 'i3.png'}")
    assert "withLora(style_peft,0.6)" in session.prefill


# ---------------------------------------------------------------- the rest of 2.3's prompt language


def test_legacy_blend_and_skip_normalize(session):
    blend = run(session, f'"a cat:0.5 a dog:0.5" {SIZE}')
    compel = run(session, f'\'("a cat", "a dog").blend(0.5, 0.5)\' {SIZE}')
    assert np.array_equal(blend, compel)
    normalized = run(session, f'"fire:1 ice:3" {SIZE}')
    raw = run(session, f'"fire:1 ice:3" -x {SIZE}')
    assert not np.array_equal(normalized, raw)
    assert np.array_equal(normalized, run(session, f'"fire:0.25 ice:0.75" -x {SIZE}'))


def test_and_runs_with_a_negative_prompt(session):
    anded = run(session, f'\'("fire", "ice").and() [smoke]\' {SIZE}')
    assert not np.array_equal(anded, run(session, f'"fire [smoke]" {SIZE}'))


# ---------------------------------------------------------------- an SD 1.x-topology model


@pytest.fixture(scope="module")
def sd1(tmp_path_factory, cache_dir):
    """A model with SD 1.5's layout (4 UNet levels, 2 layers each, 768-wide context, a 12-layer CLIP text
    encoder, the CLIP tokenizer) at small widths, loaded from models.yaml: kohya's key names for it are the
    names real SD 1.x LoRAs carry."""
    from diffusers import AutoencoderKL, LMSDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from invoke_shell.models.families import CONFIGS
    from invoke_shell.models.manager import ModelManager
    from invoke_shell.models.registry import load_registry

    root = tmp_path_factory.mktemp("sd1")
    torch.manual_seed(0)
    unet_config = json.loads((CONFIGS / "sd1" / "unet" / "config.json").read_text())
    unet_config.update(block_out_channels=[32, 32, 64, 64], sample_size=8, attention_head_dim=4)
    unet = UNet2DConditionModel.from_config(unet_config)
    text_config = json.loads((CONFIGS / "sd1" / "text_encoder" / "config.json").read_text())
    text_config.update(intermediate_size=64)
    text_encoder = CLIPTextModel(CLIPTextConfig(**{k: v for k, v in text_config.items() if not k.startswith("_")}))
    vae = AutoencoderKL(latent_channels=4, sample_size=64, layers_per_block=1, norm_num_groups=8,
                        block_out_channels=(8, 16, 32, 32), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4)
    scheduler = LMSDiscreteScheduler.from_pretrained(CONFIGS / "sd1", subfolder="scheduler")
    tokenizer = CLIPTokenizer.from_pretrained(CONFIGS / "clip-tokenizer")
    StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler,
                            safety_checker=None, feature_extractor=None, requires_safety_checker=False
                            ).save_pretrained(root / "model")
    (root / "models.yaml").write_text("sd1-layout:\n  format: diffusers\n  path: model\n  default: true\n")
    loras = root / "loras"
    loras.mkdir()
    layers = lora_layers(unet, text_encoder, rank=2, seed=9)
    for fmt in ("peft", "diffusers", "kohya"):
        write_lora(layers, loras / f"real_{fmt}.safetensors", fmt)
    manager = ModelManager(load_registry(str(root / "models.yaml")), device="cpu", precision="float32")
    return manager, root, layers


def test_sd1_layout_loras_reach_every_layer(sd1, tmp_path):
    from invoke_shell.shell import Shell

    manager, root, layers = sd1
    said: list[str] = []
    shell = Shell(manager, outdir=str(tmp_path / "out"), say=said.append, library=Library.beside(str(root / "models.yaml")))
    shell.said = said
    plain = run(shell, f'"a cat" {SIZE}')
    pictures = [run(shell, f'"a cat <lora:real_{fmt}:1>" {SIZE}') for fmt in ("peft", "diffusers", "kohya")]
    assert all(np.abs(p.astype(int) - pictures[0]).max() <= 1 for p in pictures)
    assert np.abs(pictures[0].astype(int) - plain).mean() > 1
    pipe = manager.active.txt2img
    expected = {part: len([k for k in layers if k.startswith(part + ".") and "lora_A" in k])
                for part in ("unet", "text_encoder")}
    assert expected["text_encoder"] == 12 * 4
    for part, module in (("unet", pipe.unet), ("text_encoder", pipe.text_encoder)):
        injected = [m for m in module.modules() if hasattr(m, "lora_A") and "lora3" in m.lora_A]
        assert len(injected) == expected[part], f"the kohya file reached every {part} layer it names"
    assert np.array_equal(run(shell, f'"a cat" {SIZE}'), plain)
    assert manager.active.txt2img.unet.config.cross_attention_dim == 768
    tiny_lora = root / "loras" / "for_tiny.safetensors"
    write_lora(lora_layers(_unet_of_width(32), None, rank=2), tiny_lora, "kohya")
    assert "is for a model 32 wide" in fails(shell, f'"a cat withLora(for_tiny)" {SIZE}')


def test_verify_reruns_a_lora_image_exactly(session):
    run(session, f'"a <three> fire withLora(other,0.6)" {SIZE}')
    path = session.previous[-1].path
    run(session, f'"fire" {SIZE}')  # the model is back to plain before !verify
    before = len(session.said)
    assert session.execute(f"!verify {path}")
    assert any(line.startswith(f"{path}: identical") for line in session.said[before:]), session.said[before:]


# ---------------------------------------------------------------- the examples shipped for the demo model


def test_the_shipped_examples_teach_the_demo_model(demo_model, tmp_path):
    """The ring LoRA and the <ember> embedding in invoke_shell/data/examples, found by default beside any
    models.yaml, do what docs/loras.md says on held-out prompts, and nothing without them."""
    from invoke_shell.toymodel import data as D
    from invoke_shell.toymodel.teach import drawn_in, is_ring

    library = Library.beside(str(tmp_path / "models.yaml"))
    from invoke_shell.engine.generate import prepare, run as run_job
    from invoke_shell.request import parse

    def draw(prompt, seed):
        request = parse(f'"{prompt}" -s 20 -S {seed} -W 64 -H 64')
        adapters.apply(demo_model, request.extras, library)
        return run_job(prepare(request, demo_model), demo_model)

    prompts = [("a yellow ring on a blue background", "a <ember> star on a green background"),
               ("a white ring on a purple background", "a <ember> circle on a blue background")]
    rings = sum(is_ring(draw(f"{ring} withLora(ring)", seed)) for ring, _ in prompts for seed in range(3))
    plain_rings = sum(is_ring(draw(ring, seed)) for ring, _ in prompts for seed in range(3))
    embers = sum(drawn_in(draw(ember, seed), D.PALETTE["orange"]) for _, ember in prompts for seed in range(3))
    plain = sum(drawn_in(draw(ember.replace("<ember>", "ember"), seed), D.PALETTE["orange"])
                for _, ember in prompts for seed in range(3))
    adapters.apply(demo_model, extract("x"), library)
    assert embers >= 5 and plain == 0, (embers, plain)
    assert rings >= 2 and rings > plain_rings, (rings, plain_rings)


def test_every_format_on_the_demo_model(demo_model, tmp_path):
    """The three LoRA formats made for the demo model's own layers draw the same picture on it."""
    from invoke_shell.engine.generate import prepare, run as run_job
    from invoke_shell.request import parse

    folder = tmp_path / "loras"
    folder.mkdir()
    pipe = demo_model.txt2img
    layers = lora_layers(pipe.unet, pipe.text_encoder, rank=4, seed=11, scale=0.1)
    for fmt in ("peft", "diffusers", "kohya"):
        write_lora(layers, folder / f"demo_{fmt}.safetensors", fmt)
    library = Library([folder], [])

    def draw(prompt):
        request = parse(f'"{prompt}" -s 10 -S 2 -W 64 -H 64')
        adapters.apply(demo_model, request.extras, library)
        return np.asarray(run_job(prepare(request, demo_model), demo_model)).astype(int)

    plain = draw("a red star on a blue background")
    pictures = [draw(f"a red star on a blue background withLora(demo_{fmt})") for fmt in ("peft", "diffusers", "kohya")]
    assert all(np.abs(p - pictures[0]).max() <= 1 for p in pictures)
    assert np.abs(pictures[0] - plain).mean() > 1
    assert np.array_equal(draw("a red star on a blue background"), plain)
