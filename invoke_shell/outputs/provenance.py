"""What decides an image's pixels beyond its command: the precision and device the model ran in, where the
noise was drawn, and the torch and diffusers versions. Recorded in every PNG (sd-metadata, and compactly in
A1111's `Version:`), read back as data by !fetch and !verify. Nothing here imports torch: versions come from
the installed distributions' metadata."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata

from .. import __version__
from ..errors import ParseError
from ..prompt_extras import Used
from .readers.common import load_json_object, printable

_VERSION_TEXT = re.compile(r"invoke-shell (\S+); torch (\S+); diffusers (\S+); (\w+) (\w+) \(noise (\w+)\)")
_NAME = re.compile(r"[\w.+-]{1,40}")


def installed(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "none"


@dataclass(frozen=True)
class Provenance:
    precision: str        # float32, bfloat16, float16
    device: str           # cpu, cuda, mps
    noise_device: str     # where the seed's noise was drawn
    torch: str
    diffusers: str
    app: str = __version__
    used: tuple[Used, ...] = ()  # the LoRA and embedding files the command ran with (names, weights, hashes)
    family: str = ""             # the model family (sd1, sdxl, ...): SDXL also records its size conditioning
    hires: tuple[int, int, int] | None = None  # --hires_fix's first pass: (width, height, steps)

    @classmethod
    def here(cls, precision: str, device: str, noise_device: str) -> Provenance:
        return cls(precision, device, noise_device, installed("torch"), installed("diffusers"))

    def to_json(self) -> dict:
        found = {"precision": self.precision, "device": self.device, "noise_device": self.noise_device,
                 "versions": {"invoke-shell": self.app, "torch": self.torch, "diffusers": self.diffusers}}
        for kind, key in (("lora", "loras"), ("embedding", "embeddings"), ("text_mask", "text_mask_model"),
                          ("facetool", "facetool_model"), ("upscaler", "upscaler_model")):
            entries = [{"name": u.name, **({"weight": u.weight} if u.weight is not None else {}),
                        "sha256": u.sha256, "short_hash": u.short_hash} for u in self.used if u.kind == kind]
            if entries:
                found[key] = entries
        if self.hires is not None:
            found["hires"] = dict(zip(("first_width", "first_height", "first_steps"), self.hires))
        return found

    def version_text(self) -> str:
        """A1111's `Version:` value: `invoke-shell 0.1.0; torch 2.13.0; diffusers 0.42.1; cpu float32 (noise cpu)`."""
        return (f"invoke-shell {self.app}; torch {self.torch}; diffusers {self.diffusers}; "
                f"{self.device} {self.precision} (noise {self.noise_device})")

    def describe(self) -> str:
        return (f"{self.precision} on {self.device} (noise on {self.noise_device}), torch {self.torch}, "
                f"diffusers {self.diffusers}, invoke-shell {self.app}")

    def differences(self, other: Provenance, what: tuple[str, ...] = ("precision", "device", "noise_device",
                                                                      "torch", "diffusers")) -> list[str]:
        """`name A here, B in the file` for each field in `what` that differs; `self` is here."""
        labels = {"precision": "precision", "device": "device", "noise_device": "noise device",
                  "torch": "torch", "diffusers": "diffusers"}
        return [f"{labels[name]} {getattr(self, name)} here, {getattr(other, name)} in the file"
                for name in what if getattr(self, name) != getattr(other, name)]


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ParseError(f"{what} should be a short name, got {printable(repr(value))[:40]}")
    return value


def from_sd_metadata(data: dict) -> Provenance | None:
    """From a parsed sd-metadata; None when it records no provenance. ParseError on malformed values."""
    images = data.get("images")
    image = data.get("image") or (images[0] if isinstance(images, list) and images else None)
    versions = data.get("versions")
    if not isinstance(image, dict) or not isinstance(versions, dict) or "precision" not in image:
        return None  # written before provenance was recorded, or by InvokeAI
    return Provenance(_name(image.get("precision"), "precision"), _name(image.get("device"), "device"),
                      _name(image.get("noise_device"), "noise_device"), _name(versions.get("torch"), "torch"),
                      _name(versions.get("diffusers"), "diffusers"), _name(versions.get("invoke-shell"), "version"))


def from_version_text(text: str) -> Provenance | None:
    match = _VERSION_TEXT.search(text)
    if match is None:
        return None
    app, torch, diffusers, device, precision, noise = match.groups()
    return Provenance(precision, device, noise, torch, diffusers, app)


def recorded(sd: dict, chunks: dict[str, str]) -> Provenance | None:
    """The provenance a PNG of this shell records: from its parsed sd-metadata `sd`, else from the A1111
    `Version:` in `chunks`."""
    try:
        found = from_sd_metadata(sd)
        if found is not None:
            return found
    except ParseError:
        pass
    return from_version_text(chunks.get("parameters", "")[-2000:])


def recorded_model(sd: dict, chunks: dict[str, str]) -> tuple[str | None, str | None]:
    """(model name, model hash) as the file records them (the parsed sd-metadata `sd`, InvokeAI 3, A1111),
    else Nones."""
    try:
        if "sd-metadata" in chunks:
            name, digest = sd.get("model_id") or sd.get("model_weights"), sd.get("model_hash")
            return (name if isinstance(name, str) else None), (digest if isinstance(digest, str) else None)
        if "invokeai_metadata" in chunks:
            model = load_json_object(chunks["invokeai_metadata"], "invokeai_metadata").get("model")
            if isinstance(model, dict):
                model, digest = model.get("name") or model.get("model_name"), model.get("hash")
                return (model if isinstance(model, str) else None), (digest if isinstance(digest, str) else None)
    except ParseError:
        return None, None
    params = chunks.get("parameters", "").rsplit("\n", 1)[-1]
    name = re.search(r"(?:^|, )Model: ([^,]{1,200})", params)
    digest = re.search(r"(?:^|, )Model hash: ([0-9a-fA-F]{8,64})", params)
    return (name.group(1).strip() if name else None), (digest.group(1).lower() if digest else None)


def recorded_weights(sd: dict, chunks: dict[str, str]) -> tuple[tuple[str, str, str], ...]:
    """(kind, name, hash) of each LoRA and embedding (and upscaler, face restorer, CLIPSeg model) the file says
    the image was made with: this shell's sd-metadata (sha256), else A1111's `Lora hashes` / `TI hashes`
    (A1111's short hashes). Read as data."""
    from .readers.a1111 import hash_pairs, settings

    image = sd.get("image") if isinstance(sd, dict) else None
    found = []
    if isinstance(image, dict):
        for kind, key in (("lora", "loras"), ("embedding", "embeddings"), ("upscaler", "upscaler_model"),
                          ("facetool", "facetool_model"), ("text_mask", "text_mask_model")):
            entries = image.get(key)
            for entry in entries[:32] if isinstance(entries, list) else ():
                if isinstance(entry, dict) and isinstance(entry.get("name"), str) and isinstance(entry.get("sha256"), str):
                    found.append((kind, entry["name"][:80], entry["sha256"][:64].lower()))
        if found or "sd-metadata" in chunks:
            return tuple(found)
    params = settings(chunks.get("parameters", "").replace("\r\n", "\n").rsplit("\n", 1)[-1])
    for kind, key in (("lora", "Lora hashes"), ("embedding", "TI hashes")):
        found += [(kind, name, digest) for name, digest in hash_pairs(params.get(key, ""))]
    return tuple(found)
