"""THE sampler table: one entry per sampler, read by the parser and completion (names), the engine (the
diffusers scheduler class and its overrides), `!help` and the metadata writers and readers (what AUTOMATIC1111,
ComfyUI and InvokeAI 3 call it). Adding a sampler is adding an entry. Pure data: no torch, no diffusers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


KARRAS = (("use_karras_sigmas", True),)


@dataclass(frozen=True)
class Sampler:
    name: str                              # ours (`-A k_lms`): InvokeAI 2.3's names, and InvokeAI 3's for the rest
    scheduler: str                         # the diffusers scheduler class, built with from_config
    overrides: tuple[tuple[str, Any], ...]  # applied on top of the model's scheduler config
    order: int                             # UNet calls per step (2: second-order; the last step takes 1)
    a1111: str | None                      # A1111's `Sampler:` name without the schedule; None: it has none
    comfyui: tuple[str, str] | None        # ComfyUI's (sampler_name, scheduler); None: it has none
    invokeai3: str | None                  # InvokeAI 3's scheduler name
    description: str = ""
    synonyms: tuple[str, ...] = ()         # other names typed for it (InvokeAI 3's, where they differ)
    distilled: bool = False                # gives a good picture only on a model distilled for it

    @property
    def config_overrides(self) -> dict[str, Any]:
        return dict(self.overrides)

    @property
    def karras(self) -> bool:
        """Karras sigmas asked for by the entry (the model's own config may ask for them too)."""
        return dict(self.overrides).get("use_karras_sigmas") is True

    @property
    def a1111_text(self) -> str | None:
        """What A1111 writes for it: `DPM++ 2M Karras` (the older one-string form, which A1111 still reads)."""
        return None if self.a1111 is None else self.a1111 + (" Karras" if self.karras else "")


def _k(entry: Sampler, description: str) -> Sampler:
    """The Karras-sigmas variant of an entry: InvokeAI 3's `<name>_k`, ComfyUI's `karras` scheduler."""
    name = f"{entry.invokeai3}_k"
    return Sampler(name, entry.scheduler, entry.overrides + KARRAS, entry.order, entry.a1111,
                   (entry.comfyui[0], "karras") if entry.comfyui else None, name, description)


_LMS = Sampler("k_lms", "LMSDiscreteScheduler", (), 1, "LMS", ("lms", "normal"), "lms", "LMS (needs scipy)",
               synonyms=("lms",))
_HEUN = Sampler("k_heun", "HeunDiscreteScheduler", (), 2, "Heun", ("heun", "normal"), "heun",
                "Heun (2 calls a step)", synonyms=("heun",))
_EULER = Sampler("k_euler", "EulerDiscreteScheduler", (), 1, "Euler", ("euler", "normal"), "euler", "Euler",
                 synonyms=("euler",))
_DPMPP_2M = Sampler("k_dpmpp_2", "DPMSolverMultistepScheduler",
                    (("algorithm_type", "dpmsolver++"), ("solver_order", 2)), 1, "DPM++ 2M", ("dpmpp_2m", "normal"),
                    "dpmpp_2m", "DPM++ 2M", synonyms=("dpmpp_2m", "k_dpmpp_2m"))
_DPMPP_2S = Sampler("dpmpp_2s", "DPMSolverSinglestepScheduler", (("solver_order", 2),), 1, None, None, "dpmpp_2s",
                    "DPM++ 2S (singlestep)")
_DPMPP_2M_SDE = Sampler("dpmpp_2m_sde", "DPMSolverMultistepScheduler",
                        (("algorithm_type", "sde-dpmsolver++"), ("solver_order", 2)), 1, "DPM++ 2M SDE",
                        ("dpmpp_2m_sde", "normal"), "dpmpp_2m_sde", "DPM++ 2M SDE")
_DPMPP_SDE = Sampler("dpmpp_sde", "DPMSolverSDEScheduler", (), 2, "DPM++ SDE", ("dpmpp_sde", "normal"), "dpmpp_sde",
                     "DPM++ SDE (2 calls a step; needs torchsde)")
_UNIPC = Sampler("unipc", "UniPCMultistepScheduler", (), 1, "UniPC", ("uni_pc", "normal"), "unipc", "UniPC")

SAMPLER_TABLE: tuple[Sampler, ...] = (
    Sampler("ddim", "DDIMScheduler", (), 1, "DDIM", ("ddim", "normal"), "ddim", "DDIM"),
    Sampler("plms", "PNDMScheduler", (("skip_prk_steps", True),), 1, "PLMS", None, "pndm",
            "PLMS (PNDM without its PRK warm-up)", synonyms=("pndm",)),
    _LMS,
    _EULER,
    Sampler("k_euler_a", "EulerAncestralDiscreteScheduler", (), 1, "Euler a", ("euler_ancestral", "normal"),
            "euler_a", "Euler ancestral", synonyms=("euler_a",)),
    _HEUN,
    Sampler("k_dpm_2", "KDPM2DiscreteScheduler", (), 2, "DPM2", ("dpm_2", "normal"), "kdpm_2",
            "DPM2 (2 calls a step)", synonyms=("kdpm_2",)),
    Sampler("k_dpm_2_a", "KDPM2AncestralDiscreteScheduler", (), 2, "DPM2 a", ("dpm_2_ancestral", "normal"),
            "kdpm_2_a", "DPM2 ancestral (2 calls a step)", synonyms=("kdpm_2_a",)),
    _DPMPP_2M,
    # InvokeAI 3's other schedulers; `_k` = Karras sigmas
    Sampler("ddpm", "DDPMScheduler", (), 1, "DDPM", ("ddpm", "normal"), "ddpm", "DDPM (ancestral; needs many steps)"),
    Sampler("deis", "DEISMultistepScheduler", (), 1, None, ("deis", "normal"), "deis", "DEIS"),
    _k(_LMS, "LMS, Karras sigmas"),
    _k(_HEUN, "Heun, Karras sigmas (2 calls a step)"),
    _k(_EULER, "Euler, Karras sigmas"),
    _DPMPP_2S,
    _k(_DPMPP_2S, "DPM++ 2S, Karras sigmas"),
    _k(_DPMPP_2M, "DPM++ 2M Karras"),
    _DPMPP_2M_SDE,
    _k(_DPMPP_2M_SDE, "DPM++ 2M SDE Karras"),
    _DPMPP_SDE,
    _k(_DPMPP_SDE, "DPM++ SDE Karras (2 calls a step)"),
    _UNIPC,
    _k(_UNIPC, "UniPC, Karras sigmas"),
    Sampler("lcm", "LCMScheduler", (), 1, "LCM", ("lcm", "normal"), "lcm",
            "LCM: needs an LCM-distilled model (or LoRA), 4-8 steps, -C 1-2", distilled=True),
    Sampler("tcd", "TCDScheduler", (), 1, None, None, "tcd",
            "TCD: needs a TCD-distilled model (or LoRA), 4-8 steps, -C 1-2", distilled=True),
)

BY_NAME: dict[str, Sampler] = {s.name: s for s in SAMPLER_TABLE}
NAMES: tuple[str, ...] = tuple(BY_NAME)
SYNONYMS: dict[str, str] = {alias: s.name for s in SAMPLER_TABLE for alias in s.synonyms}
# what other programs write -> ours
FROM_A1111: dict[tuple[str, bool], str] = {(s.a1111, s.karras): s.name for s in SAMPLER_TABLE if s.a1111}
FROM_COMFYUI: dict[tuple[str, str], str] = {s.comfyui: s.name for s in SAMPLER_TABLE if s.comfyui}
FROM_INVOKEAI3: dict[str, str] = {s.invokeai3: s.name for s in SAMPLER_TABLE if s.invokeai3}


def a1111_name(name: str) -> str:
    """What the A1111 `parameters` text says for our sampler: its A1111 name, else ours."""
    return BY_NAME[name].a1111_text or name


def from_a1111(text: str, schedule: str | None) -> str | None:
    """Ours for A1111's `Sampler:` text (`DPM++ 2M Karras`, or `DPM++ 2M` with `Schedule type: Karras`)."""
    karras = text.endswith(" Karras") or (schedule or "").lower() == "karras"
    base = text[: -len(" Karras")] if text.endswith(" Karras") else text
    return FROM_A1111.get((base, karras))


def from_comfyui(sampler_name: str, scheduler: str | None) -> str | None:
    """Ours for ComfyUI's sampler_name and scheduler (`normal` when absent)."""
    return FROM_COMFYUI.get((sampler_name, scheduler or "normal"))


def karras_twin(name: str) -> str | None:
    """The entry with Karras sigmas that is `name` otherwise (`k_lms` -> `lms_k`); None when it has none or is
    one."""
    entry = BY_NAME[name]
    if entry.karras or entry.invokeai3 is None:
        return None
    twin = BY_NAME.get(f"{entry.invokeai3}_k")
    return twin.name if twin is not None else None


def with_karras_max(name: str, steps: int, karras_max: int | None) -> str:
    """InvokeAI 2.3's --karras_max N: below N steps its k-diffusion samplers ran with Karras sigmas. Here: the
    sampler's Karras twin when it has one and steps < N, else the sampler itself."""
    if karras_max is None or steps >= karras_max:
        return name
    return karras_twin(name) or name
