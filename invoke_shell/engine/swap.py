"""InvokeAI 2.3's `.swap()`: prompt-to-prompt cross-attention control, done as 2.3 did it on diffusers (its
`SwapCrossAttnProcessor`), with an attention processor on the UNet's cross-attention layers.

`a red circle.swap(square) on a blue background`: the UNet is conditioned on the original prompt (`a red
circle on a blue background`). From `t_start` to `t_end` of the run (fractions of the UNet calls; compel's
defaults 0.2 and 1.0), the conditional half of every cross-attention layer takes its values from the edited
prompt (`... square ...`) and, for the tokens the two prompts share, the attention maps the original prompt
gives (re-indexed to the edited prompt's token positions); the swapped tokens keep their own maps. The
picture keeps the original's composition and draws the edit. The unconditional half is untouched.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch


@dataclass
class SwapPlan:
    edited: torch.Tensor      # (1, T, D): the edited prompt's conditioning, padded as the original
    index_map: torch.Tensor   # (T,) long: for each edited token position, the original position it shares
    mask: torch.Tensor        # (T,): 1 where the attention map comes from the original prompt
    t_start: float
    t_end: float
    calls: int = 1            # UNet calls in the run
    call: int = 0             # the UNet call running now
    guided: bool = True       # the batch is [unconditional, conditional] (classifier-free guidance)

    @property
    def active(self) -> bool:
        return self.t_start <= self.call / self.calls < self.t_end


def plan(arguments, length: int, guided: bool) -> SwapPlan:
    """A SwapPlan from compel's cross-attention control arguments (InvokeAI 2.3's index map and mask) for
    conditioning `length` tokens long."""
    mask = torch.zeros(length)
    index_map = torch.arange(length, dtype=torch.long)
    for name, a0, a1, b0, b1 in arguments.edit_opcodes:
        if b0 < length and name == "equal":  # tokens not edited: the original prompt's maps
            index_map[b0:b1] = torch.arange(a0, a1, dtype=torch.long)[: max(0, min(b1, length) - b0)]
            mask[b0:b1] = 1
    options = arguments.edit_options or {}
    return SwapPlan(arguments.edited_conditioning, index_map, mask, float(options.get("t_start", 0.2)),
                    float(options.get("t_end", 1.0)), guided=guided)


class SwapProcessor:
    """A cross-attention processor that swaps the conditional half while the plan is active, and otherwise
    hands every call to the processor it replaced."""

    def __init__(self, plan: SwapPlan, base):
        self.plan = plan
        self.base = base

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        if encoder_hidden_states is None or not self.plan.active or hidden_states.ndim != 3:
            return self.base(attn, hidden_states, encoder_hidden_states, attention_mask, temb, **kwargs)
        batch = hidden_states.shape[0]
        first = batch // 2 if self.plan.guided else 0  # rows [first:] are conditional
        out = [self.base(attn, hidden_states[:first], encoder_hidden_states[:first], None, temb)] if first else []
        out.append(self._swapped(attn, hidden_states[first:], encoder_hidden_states[first:]))
        return torch.cat(out)

    def _swapped(self, attn, hidden_states, original):
        # hidden_states (B, L, C); original (B, T, D)
        plan = self.plan
        edited = plan.edited.to(original.device, original.dtype).expand(original.shape[0], -1, -1)
        query = attn.head_to_batch_dim(attn.to_q(hidden_states))               # (B*h, L, C/h)
        original_probs = attn.get_attention_scores(query, attn.head_to_batch_dim(attn.to_k(original)), None)
        edited_probs = attn.get_attention_scores(query, attn.head_to_batch_dim(attn.to_k(edited)), None)
        mask = plan.mask.to(query.device, edited_probs.dtype)
        probs = original_probs.index_select(-1, plan.index_map.to(query.device)) * mask + edited_probs * (1 - mask)
        out = attn.batch_to_head_dim(torch.bmm(probs, attn.head_to_batch_dim(attn.to_v(edited))))
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor


@contextmanager
def swapping(unet, swap: SwapPlan | None, calls: int):
    """While inside, the UNet's cross-attention layers run `swap` (None: nothing changes); the processors they
    had are put back on the way out."""
    if swap is None:
        yield
        return
    swap.calls, swap.call = max(1, calls), -1  # the pre-hook below counts from 0
    layers = [module for name, module in unet.named_modules() if name.endswith("attn2") and hasattr(module, "processor")]
    saved = [layer.processor for layer in layers]

    def count(_module, _args):
        swap.call += 1

    for layer, base in zip(layers, saved):
        layer.processor = SwapProcessor(swap, base)
    hook = unet.register_forward_pre_hook(count)
    try:
        yield
    finally:
        hook.remove()
        for layer, base in zip(layers, saved):
            layer.processor = base
