"""Prompt conditioning through the `compel` library, which reads InvokeAI 2.3's prompt syntax: `(word)1.3`,
`word++`, `word-`, `("a", "b").blend(1, 1)`, `("a", "b").and()`, and (rewritten by prompt_extras.py) the old
`a:0.5 b:0.5` blends. The `[negative]` groups and the LoRA syntax are split off before (request.py). What
compel parses and this engine does not do is refused in one line; `.swap()` is done by engine/swap.py."""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import lru_cache

from ..errors import ParseError
from ..prompt_extras import legacy_blend

MAX_TOKENS = 75  # CLIP's 77 positions less the start and end markers


def _compel(model):
    """One Compel per resident model (cheap; it holds references to the tokenizer and text encoder)."""
    compel = getattr(model, "_compel", None)
    if compel is None:
        from compel import Compel

        from .adapters import Expander

        pipe = model.txt2img
        if is_xl(model):  # the refiner has the second text encoder alone
            from compel import ReturnedEmbeddingsType

            penultimate = ReturnedEmbeddingsType.PENULTIMATE_HIDDEN_STATES_NON_NORMALIZED
            first = Compel(tokenizer=pipe.tokenizer, text_encoder=pipe.text_encoder, truncate_long_prompts=True,
                           returned_embeddings_type=penultimate) if pipe.text_encoder is not None else None
            compel = _PairedCompel(first, Compel(tokenizer=pipe.tokenizer_2, text_encoder=pipe.text_encoder_2,
                                                 truncate_long_prompts=True, returned_embeddings_type=penultimate,
                                                 requires_pooled=True))
        else:
            compel = Compel(tokenizer=pipe.tokenizer, text_encoder=pipe.text_encoder, truncate_long_prompts=True,
                            textual_inversion_manager=Expander(model))
        model._compel = compel
    return compel


class _PairedCompel:
    """SDXL's two text encoders as one Compel (compel's own list form prints a deprecation on stdout): each
    encodes the prompt from its layer before the last, not normalized, as diffusers' encode_prompt does; the
    two are joined along the width (768 + 1280); the pooled embedding is the second encoder's."""

    def __init__(self, first, second):
        self.compels = [c for c in (first, second) if c is not None]
        self.second = second
        self.conditioning_provider = self.compels[0].conditioning_provider  # token ids, as the first tokenizer sees them

    def build_conditioning_tensor_for_conjunction(self, conjunction):
        import torch

        built = [c.build_conditioning_tensor_for_conjunction(conjunction) for c in self.compels]
        return torch.cat([conditioning for conditioning, _ in built], dim=-1), built[0][1]

    def pad_conditioning_tensors_to_same_length(self, conditionings):
        import torch
        from compel import Compel

        empty = torch.cat([c.build_conditioning_tensor("") for c in self.compels], dim=-1)
        return Compel._pad_conditioning_tensors_to_same_length(conditionings, empty)

    @contextmanager
    def remembering(self):
        """While inside, each pass of the second text encoder over a whole prompt (no token masked) is kept with
        its pooled embedding, so `pooled` takes a text's embedding from the pass that encoded it, as diffusers'
        encode_prompt does, rather than running the 695M-parameter encoder again."""
        from compel.embeddings_provider import _get_pooled_output_from_text_encoder_output as pooled_output

        def keep(module, args, kwargs, output):
            ids, mask = (list(args) + [kwargs.get("input_ids"), kwargs.get("attention_mask")])[:2]
            if mask is None or bool(mask.all()):
                self._passes.append((ids, pooled_output(output)))

        self._passes = []
        handle = self.second.conditioning_provider.text_encoder.register_forward_hook(keep, with_kwargs=True)
        try:
            yield
        finally:
            handle.remove()
            self._passes = []

    def pooled(self, text: str):
        """The second encoder's pooled embedding of `text` as compel makes it (the raw text, tokenized whole and
        padded), from a remembered pass with the same tokens when there is one."""
        import torch

        provider = self.second.conditioning_provider
        ids = torch.tensor(provider.get_token_ids([text], padding="max_length", truncation_override=True))
        for seen, embeds in getattr(self, "_passes", ()):
            if seen.shape == ids.shape and torch.equal(seen.cpu(), ids):
                return embeds
        return provider.get_pooled_embeddings([text])


def is_xl(model) -> bool:
    return model.family.base == "sdxl"


def _refuse_on_xl(model, clip_skip: int | None, swap) -> None:
    if not is_xl(model):
        return
    if (clip_skip or 1) > 1:
        raise ParseError("--clip_skip: SDXL models already read the prompt from the layer before the last; "
                         "use --clip_skip 1 (or none) with them")
    if swap is not None:
        raise ParseError(".swap() runs on Stable Diffusion 1.x and 2.x models, not yet on SDXL")


@lru_cache(maxsize=1)
def _parser():
    from compel.prompt_parser import PromptParser

    return PromptParser()


@lru_cache(maxsize=256)
def _parse(text: str):
    """compel's parse of a prompt. compel builds its pyparsing grammar on every call (~20-40 ms); one parser,
    and the prompts seen lately remembered, make it free for the same prompt again."""
    return _parser().parse_conjunction(text)


def _embed(compel, text: str, skip_normalize: bool, what: str):
    """(conditioning, compel's cross-attention control arguments for a `.swap()` or None)."""
    conjunction = _parse(legacy_blend(text, skip_normalize) or text)
    _refuse_unbuilt(conjunction, what)
    conditioning, options = compel.build_conditioning_tensor_for_conjunction(conjunction)
    return conditioning, options.get("cross_attention_control")


def _refuse_unbuilt(conjunction, what: str) -> None:
    """What compel parses but this engine does not do, named in one line rather than dropped."""
    from compel.prompt_parser import CrossAttentionControlSubstitute, FlattenedPrompt

    swaps = [prompt for prompt in conjunction.prompts if isinstance(prompt, FlattenedPrompt)
             and any(isinstance(f, CrossAttentionControlSubstitute) for f in prompt.children)]
    if swaps and what != "prompt":
        raise ParseError(".swap() works in the prompt, not in the [negative prompt]")
    if swaps and len(conjunction.prompts) > 1:
        raise ParseError(".swap() cannot be combined with .and(): write one prompt with the swap")
    if conjunction.lora_weights:
        names = ", ".join(str(lora.model) for lora in conjunction.lora_weights)
        raise ParseError(f"cannot read the LoRA syntax around {names}: write withLora(name,weight) or "
                         "<lora:name:weight>")


@dataclass(frozen=True)
class Encoded:
    positive: object          # (1, 77 x k, hidden)
    negative: object | None   # the same shape, or None without guidance
    swap: object | None       # compel's cross-attention control arguments for a `.swap()` (engine/swap.py)
    pooled: object = None           # SDXL: (1, 1280) pooled text embeddings of the prompt
    negative_pooled: object = None  # SDXL: of the negative prompt

    def pipeline_kwargs(self) -> dict:
        """The embeddings as diffusers' pipelines take them."""
        kwargs = dict(prompt_embeds=self.positive, negative_prompt_embeds=self.negative)
        if self.pooled is not None:
            kwargs.update(pooled_prompt_embeds=self.pooled, negative_pooled_prompt_embeds=self.negative_pooled)
        return kwargs


def encode(model, positive: str, negative: str | None, clip_skip: int | None = None,
           skip_normalize: bool = False) -> Encoded:
    """The prompt embeddings for the pipelines' `prompt_embeds`; the negative is None when `negative` is (no
    guidance needs none). An `.and()` prompt is k x 77 tokens long, and the other is padded to its length. A
    `.swap()` prompt gives the original prompt's embeddings and the swap's arguments. `clip_skip` N > 1 reads
    the prompt from the Nth layer from the end, through the final layer norm, as A1111 and diffusers'
    encode_prompt do. `skip_normalize` keeps an old-style blend's weights as given (-x)."""
    import torch

    compel = _compel(model)
    try:
        with torch.inference_mode(), _skipping(model.txt2img.text_encoder, 1 if is_xl(model) else clip_skip or 1), \
                _remembering(compel):
            positive_embeds, swap = _embed(compel, positive, skip_normalize, "prompt")
            _refuse_on_xl(model, clip_skip, swap)
            pooled = _pooled(model, compel, positive, skip_normalize)
            if negative is None:
                return Encoded(positive_embeds, None, swap, pooled)
            negative_embeds, _ = _embed(compel, negative, skip_normalize, "negative")
            if negative_embeds.shape != positive_embeds.shape:
                positive_embeds, negative_embeds = compel.pad_conditioning_tensors_to_same_length(
                    [positive_embeds, negative_embeds])
                if swap is not None:  # the edited prompt is padded as the original
                    swap.edited_conditioning = compel.pad_conditioning_tensors_to_same_length(
                        [swap.edited_conditioning, negative_embeds])[0]
            return Encoded(positive_embeds, negative_embeds, swap, pooled,
                           _pooled(model, compel, negative, skip_normalize))
    except ParseError:
        raise
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise ParseError(f"cannot read the prompt's weighting syntax: {exc}".splitlines()[0]) from None
    except Exception as exc:  # pyparsing errors
        if type(exc).__module__.startswith("pyparsing"):
            raise ParseError(f"cannot read the prompt's weighting syntax: {exc}".splitlines()[0]) from None
        raise


def _remembering(compel):
    return compel.remembering() if isinstance(compel, _PairedCompel) else nullcontext()


def _pooled(model, compel, text: str, skip_normalize: bool):
    """SDXL's pooled embedding of a prompt (compel's: the second text encoder's projection of the text), else
    None."""
    if not is_xl(model):
        return None
    return compel.pooled(legacy_blend(text, skip_normalize) or text)


def conditioning(model, positive: str, negative: str | None, clip_skip: int | None = None,
                 skip_normalize: bool = False):
    """(prompt_embeds, negative_prompt_embeds) of `encode` for a prompt without `.swap()`."""
    encoded = encode(model, positive, negative, clip_skip, skip_normalize)
    if encoded.swap is not None:
        raise ParseError(".swap() needs the engine's run (engine/swap.py), not conditioning() alone")
    return encoded.positive, encoded.negative


@contextmanager
def _skipping(text_encoder, clip_skip: int):
    """The text encoder runs its first layers only (all but the last `clip_skip - 1`) while inside; its
    final layer norm still applies. The layer list is restored on the way out."""
    if clip_skip == 1:
        yield
        return
    import torch

    encoder = getattr(text_encoder, "text_model", text_encoder).encoder  # transformers 4 nests it; 5 does not
    layers = encoder.layers
    if clip_skip > len(layers):
        raise ParseError(f"--clip_skip {clip_skip}: this model's text encoder has {len(layers)} layers; "
                         f"use --clip_skip 1 to {len(layers)}")
    encoder.layers = torch.nn.ModuleList(list(layers)[: len(layers) - (clip_skip - 1)])
    try:
        yield
    finally:
        encoder.layers = layers


@dataclass(frozen=True)
class Tokenization:
    kept: tuple[str, ...]
    dropped: tuple[str, ...]


def tokenization(model, text: str) -> Tokenization:
    """How the text encoder sees `text` (weighting syntax removed): the tokens kept and those past 75."""
    from compel.prompt_parser import Blend

    try:
        conjunction = _parse(legacy_blend(text) or text)
    except Exception as exc:
        raise ParseError(f"cannot read the prompt's weighting syntax: {exc}".splitlines()[0]) from None
    words = []
    for prompt in conjunction.prompts:
        parts = prompt.prompts[0].children if isinstance(prompt, Blend) else prompt.children
        words.extend(fragment.text for fragment in parts if hasattr(fragment, "text"))
    tokens = model.txt2img.tokenizer.tokenize(" ".join(words))
    return Tokenization(tuple(tokens[:MAX_TOKENS]), tuple(tokens[MAX_TOKENS:]))
