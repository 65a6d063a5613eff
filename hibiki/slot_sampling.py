"""Sampling settings per batch slot, so each stream of one batch can sample its own way.

moshi's `LMGen` samples every slot with one temperature and top-k. Here LMGen is set to
greedy (argmax) and the logits are shaped per slot before it picks: divided by the slot's
temperature, Gumbel noise added to the slot's k best, everything else masked, so
the argmax is a draw from the distribution moshi's `sample_token` draws from with those
settings (the Gumbel-max trick); greedy is top-k 1. On a CPU this is also cheaper than
moshi's multinomial, which draws exponential noise over the whole card: here noise is
drawn for the top-k candidates only (bench/RESULTS.md has the timings). Text logits
are shaped through LMGen's own `on_text_logits_hook`; audio logits where `hibiki.stream_lm`
wraps the model's `forward_depformer`, the one call that produces them (captured in CUDA
graphs like the rest, as the settings are tensors updated in place).

Classifier-free guidance mixes two logit sets after `forward_depformer`, so a top-k mask
there would be wrong: with cfg_coef != 1 the whole batch keeps one setting.

The k best come from a top-k of fixed size (CUDA graphs need fixed shapes), the
largest k a stream may ask for: `MAX_TOP_K`, or the whole vocabulary when the batch's
own setting is "no limit". A full sort of the 32k text vocabulary every step would cost
more than the depth transformer on a CPU.
"""

from __future__ import annotations

import torch
from moshi.models import LMModel

from hibiki.sampling import Sampling

MAX_TOP_K = 250


class SlotSampling:
    """Per-slot temperatures and top-k masks; `shape_text` and `shape_audio` apply them to a step's logits."""

    def __init__(self, lm: LMModel, slots: int, default: Sampling):
        device = lm.device
        self.text_card, self.audio_card = lm.text_card, lm.card
        self.max_k = self._max_k(default.top_k, self.audio_card)
        self.max_k_text = self._max_k(default.top_k_text, self.text_card)
        self.temp = torch.empty(slots, device=device)
        self.temp_text = torch.empty(slots, device=device)
        # A slot's top-k as the mask of the sorted max_k best it drops: built when the setting
        # changes, not every step.
        self.drop = torch.empty(slots, self.max_k, dtype=torch.bool, device=device)
        self.drop_text = torch.empty(slots, self.max_k_text, dtype=torch.bool, device=device)
        self.default = default
        for slot in range(slots):
            self.set(slot, default)

    @staticmethod
    def _max_k(default_k: int, card: int) -> int:
        return card if default_k <= 0 else min(card, max(default_k, MAX_TOP_K))

    def check(self, sampling: Sampling) -> None:
        """Raises ValueError for a top-k this batch cannot give a stream."""
        for name, k, max_k, card in (("top_k", sampling.top_k, self.max_k, self.audio_card),
                                     ("top_k_text", sampling.top_k_text, self.max_k_text, self.text_card)):
            if (k <= 0 and max_k < card) or k > max_k:
                raise ValueError(f"{name}={k} is beyond this server's limit: from 1 to {max_k}")

    def set(self, slot: int, sampling: Sampling) -> None:
        """A slot's settings, moshi's conventions: top-k 0 is no limit, temperature 0 or `greedy` is the argmax."""
        s = sampling
        for temps, drop, t, k, max_k in ((self.temp, self.drop, s.temp, s.top_k, self.max_k),
                                         (self.temp_text, self.drop_text, s.temp_text, s.top_k_text, self.max_k_text)):
            greedy = s.greedy or t <= 0
            temps[slot] = 1.0 if greedy else t
            drop[slot] = torch.arange(max_k) >= (1 if greedy else (max_k if k <= 0 else min(k, max_k)))

    def reset(self, slot: int) -> None:
        self.set(slot, self.default)

    def shape_text(self, logits: torch.Tensor) -> None:
        """LMGen's on_text_logits_hook: shapes [B, 1, 1, card] text logits in place."""
        logits.copy_(_shape(logits, self.temp_text, self.drop_text))

    def shape_audio(self, logits: torch.Tensor) -> torch.Tensor:
        """Shapes [B, 1, 1, card] audio logits of one codebook (a copy)."""
        return _shape(logits, self.temp, self.drop)


def _shape(logits: torch.Tensor, temp: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
    per_slot = (-1,) + (1,) * (logits.dim() - 1)
    scaled = logits.float() / temp.view(per_slot)
    best = scaled.topk(drop.shape[-1], dim=-1)  # sorted, so a slot's top-k are the first ones
    gumbel = torch.rand_like(best.values).clamp_(min=torch.finfo(scaled.dtype).tiny).log_().neg_().log_().neg_()
    noisy = (best.values + gumbel).masked_fill_(drop.view(per_slot[:-1] + (drop.shape[-1],)), float("-inf"))
    return torch.full_like(scaled, float("-inf")).scatter_(-1, best.indices, noisy).to(logits.dtype)
