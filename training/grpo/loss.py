"""The GRPO policy loss of Hibiki-Zero's second stage.

PPO's clipped objective with the ratio taken per token of every stream (text and each
generated audio codebook), a weight per stream to balance text against audio, and an
optional KL penalty to a reference policy (Hibiki-Zero uses none: beta = 0). Old-policy
log-probs come from the rollout (training/grpo/rollout.py); the policy is refreshed by
re-sampling with the current weights every few updates.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PolicyLossConfig:
    epsilon: float = 0.2  # trl GRPOConfig's name for the clipping range
    beta: float = 0.0  # KL coefficient (trl's name); 0 = no reference model
    text_weight: float = 1.0
    audio_weight: float = 1.0  # shared by the audio codebooks, split evenly between them


def policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                config: PolicyLossConfig, ref_logprobs: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """logprobs, old_logprobs, mask: [B, 1 + dep_q, T]; advantages [B, T]. Returns (loss, metrics)."""
    mask = mask & ~torch.isnan(old_logprobs)
    old = torch.nan_to_num(old_logprobs)
    ratio = torch.exp(logprobs - old)
    advantage = advantages[:, None, :]
    per_token = -torch.min(ratio * advantage, ratio.clamp(1 - config.epsilon, 1 + config.epsilon) * advantage)
    if config.beta and ref_logprobs is not None:
        delta = ref_logprobs - logprobs
        per_token = per_token + config.beta * (torch.exp(delta) - delta - 1)  # k3 estimator, as trl
    streams = logprobs.shape[1]
    weights = torch.full((streams,), config.audio_weight / max(1, streams - 1), device=logprobs.device)
    weights[0] = config.text_weight
    counts = mask.sum(dim=(0, 2)).clamp(min=1)
    per_stream = (per_token * mask).sum(dim=(0, 2)) / counts
    loss = (weights * per_stream).sum()
    clipped = ((ratio - 1).abs() > config.epsilon) & mask
    return loss, {"clip_fraction": (clipped.sum() / mask.sum().clamp(min=1)).item(),
                  "text_loss": per_stream[0].item()}
