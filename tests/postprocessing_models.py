"""Random-weight models of the real post-processing architectures, written as a user's files would be: a
small RRDBNet (ESRGAN) at x4 and x2, GFPGAN v1.4's and CodeFormer's architectures (their full size: spandrel
builds them at one size), a tiny CLIPSeg folder (config, safetensors, tokenizer, image processor), and the
models.yaml that names them beside the demo model. Built once per test session (a few seconds)."""

from __future__ import annotations

from pathlib import Path

TOKENIZER = Path(__file__).resolve().parent.parent / "invoke_shell" / "data" / "configs" / "clip-tokenizer"


def _save(state: dict, path: Path, half: bool = False) -> Path:
    from safetensors.torch import save_file

    save_file({k: (v.half() if half and v.is_floating_point() else v).contiguous() for k, v in state.items()},
              str(path))
    return path


def esrgan(path: Path, scale: int) -> Path:
    """An RRDBNet as Real-ESRGAN's files hold it (32 growth channels, as spandrel reads them): 8 features,
    2 blocks. A .pth is saved as torch.save writes a state dict (a plain pickle of tensors)."""
    import torch
    from invoke_shell.models.spandrel_import import spandrel

    spandrel()
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(scale)
    state = ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=2, scale=scale).state_dict()
    if path.suffix == ".pth":
        torch.save({"params_ema": state}, path)
        return path
    return _save(state, path)


def face_restorer(path: Path, architecture: str) -> Path:
    import torch
    from invoke_shell.models.spandrel_import import spandrel

    spandrel()
    torch.manual_seed(1)
    if architecture == "GFPGAN":
        from spandrel.architectures.GFPGAN import GFPGAN as Arch
    else:
        from spandrel_extra_arches.architectures.CodeFormer import CodeFormer as Arch
    return _save(Arch().state_dict(), path, half=True)


def clipseg(folder: Path) -> Path:
    """A tiny CLIPSeg (2-layer text and vision transformers of width 32), saved as CIDAS's folders are."""
    import torch
    from transformers import (CLIPSegConfig, CLIPSegForImageSegmentation, CLIPSegProcessor, CLIPTokenizer,
                              ViTImageProcessor)

    torch.manual_seed(2)
    config = CLIPSegConfig(
        text_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "vocab_size": 49408, "max_position_embeddings": 77},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3,
                       "num_attention_heads": 2, "image_size": 352, "patch_size": 16},
        projection_dim=32, reduce_dim=16, extract_layers=[1, 2], decoder_num_attention_heads=2,
        decoder_intermediate_size=32)
    model = CLIPSegForImageSegmentation(config)
    model.save_pretrained(str(folder), safe_serialization=True)
    processor = CLIPSegProcessor(
        image_processor=ViTImageProcessor(size={"height": 352, "width": 352}, image_mean=[0.485, 0.456, 0.406],
                                          image_std=[0.229, 0.224, 0.225]),
        tokenizer=CLIPTokenizer.from_pretrained(str(TOKENIZER)))
    processor.save_pretrained(str(folder))
    return folder


def build(root: Path) -> Path:
    """Every model under root/weights, and root/models.yaml naming them (the demo model the default);
    returns the yaml's path."""
    weights = root / "weights"
    weights.mkdir(parents=True, exist_ok=True)
    esrgan(weights / "RealESRGAN_x4plus.pth", 4)
    esrgan(weights / "RealESRGAN_x2plus.safetensors", 2)
    face_restorer(weights / "GFPGANv1.4.safetensors", "GFPGAN")
    face_restorer(weights / "codeformer.safetensors", "CodeFormer")
    clipseg(weights / "clipseg-rd64-refined")
    yaml = root / "models.yaml"
    yaml.write_text("""\
demo:
  format: diffusers
  path: builtin:demo
  default: true
realesrgan-x4:
  format: upscaler
  path: weights/RealESRGAN_x4plus.pth
  default: true
realesrgan-x2:
  format: upscaler
  path: weights/RealESRGAN_x2plus.safetensors
gfpgan:
  format: facetool
  path: weights/GFPGANv1.4.safetensors
  default: true
codeformer:
  format: facetool
  path: weights/codeformer.safetensors
clipseg:
  format: text_mask
  path: weights/clipseg-rd64-refined
""", encoding="utf-8")
    return yaml


def drawn_face(size: int = 128):
    """A drawn face (skin oval, eyes, brows, nose, mouth) that OpenCV's frontal-face detector finds."""
    from PIL import Image, ImageDraw, ImageFilter

    image = Image.new("RGB", (size, size), (90, 120, 160))
    draw = ImageDraw.Draw(image)
    s = size / 256
    draw.ellipse([70 * s, 40 * s, 186 * s, 200 * s], fill=(225, 190, 160))
    for x in (100, 156):
        draw.ellipse([(x - 14) * s, 95 * s, (x + 14) * s, 110 * s], fill=(250, 250, 250))
        draw.ellipse([(x - 6) * s, 97 * s, (x + 6) * s, 109 * s], fill=(40, 30, 30))
        draw.rectangle([(x - 18) * s, 82 * s, (x + 18) * s, 87 * s], fill=(80, 50, 40))
    draw.polygon([(128 * s, 110 * s), (118 * s, 145 * s), (138 * s, 145 * s)], fill=(200, 160, 130))
    draw.ellipse([105 * s, 158 * s, 151 * s, 172 * s], fill=(160, 60, 60))
    draw.rectangle([70 * s, 30 * s, 186 * s, 60 * s], fill=(60, 40, 30))
    return image.filter(ImageFilter.GaussianBlur(2 * s))
