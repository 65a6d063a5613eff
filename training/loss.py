"""The multistream loss of the supervised stage (and the token log-probs GRPO needs).

Cross-entropy on the text stream and on the generated audio codebooks, never on the
source codebooks (the model only reads those). As in moshi-finetune, padding text
tokens (PAD/EPAD) weigh `text_pad_weight` so the model does not win by predicting
silence, and the semantic codebook weighs `semantic_weight` times an acoustic one.

Sums and weight totals are returned separately so that data-parallel training divides
by the global total: the loss (and gradient) of a run split over N processes is then the
loss of the same batch on one process.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from moshi.models import LMModel
from moshi.models.lm import LMOutput

from hibiki.tokens import EPAD, PAD


@dataclass
class LossWeights:
    text_pad_weight: float = 0.5
    semantic_weight: float = 100.0
    text_weight: float = 1.0
    audio_weight: float = 1.0


@dataclass
class LossParts:
    text_sum: torch.Tensor  # weighted CE sums (carry gradients)
    audio_sum: torch.Tensor
    text_weight: torch.Tensor  # weight totals (no gradient)
    audio_weight: torch.Tensor


def loss_parts(output: LMOutput, lm: LMModel, codes: torch.Tensor, weights: LossWeights) -> LossParts:
    """`output` is the model's forward pass on `codes` (`lm` or its distributed wrapper)."""
    text_codes = codes[:, :1]
    text_w = torch.where((text_codes == PAD) | (text_codes == EPAD), weights.text_pad_weight, 1.0) * output.text_mask
    text_ce = F.cross_entropy(output.text_logits.float().nan_to_num().flatten(0, 2), text_codes.clamp(min=0).flatten(),
                              reduction="none").view_as(text_w)
    audio_codes = codes[:, lm.audio_offset:lm.audio_offset + lm.dep_q]
    per_codebook = torch.ones(lm.dep_q, device=codes.device)
    per_codebook[0] = weights.semantic_weight
    audio_w = per_codebook[None, :, None] * output.mask
    audio_ce = F.cross_entropy(output.logits.float().nan_to_num().flatten(0, 2), audio_codes.clamp(min=0).flatten(),
                               reduction="none").view_as(audio_w)
    return LossParts((text_ce * text_w).sum(), (audio_ce * audio_w).sum(), text_w.sum().detach(), audio_w.sum().detach())


def combine(parts: LossParts, text_total: torch.Tensor, audio_total: torch.Tensor, weights: LossWeights) -> torch.Tensor:
    """The loss to back-propagate, given global weight totals."""
    return (weights.text_weight * parts.text_sum / text_total.clamp(min=1e-6)
            + weights.audio_weight * parts.audio_sum / audio_total.clamp(min=1e-6))
