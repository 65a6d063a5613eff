"""Sampling rollouts with their log-probabilities, on the training alignment.

A rollout is one streamed translation of a source: moshi's LMGen steps exactly as the
engine does (a priming step whose input is never read, then one step per source frame),
sampling text and audio with the configured temperatures and top-k, while the log-prob
of every sampled token under the model's raw logits is recorded. Tokens are then laid
out per real frame, undoing the acoustic delays: the layout `LMModel.forward` trains on.
So the policy log-probs that GRPO recomputes in training are those seen while sampling
(tests/test_grpo_rollout.py checks they are equal).

Step n samples text for frame n and audio codebook k for frame n - delay_k; source frame
t is fed at step t + 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from moshi.models import LMGen, LMModel

ZERO_TOKEN = -1  # moshi's zero token: no input, no loss


@dataclass
class Rollout:
    codes: torch.Tensor  # [1 + dep_q + n_src, T] long, training layout; -1 where nothing was generated
    logprobs: torch.Tensor  # [1 + dep_q, T] float: log-prob of each generated token; NaN where none


@torch.no_grad()
def sample_rollout(lm: LMModel, source_codes: torch.Tensor, temp: float = 0.8, top_k: int = 250,
                   temp_text: float = 0.8, top_k_text: int = 25, greedy: bool = False) -> Rollout:
    """`source_codes` [n_src, T]: a source stream as the engine feeds it (input EOS included)."""
    frames = source_codes.shape[1]
    dep_q = lm.dep_q
    text_steps: list[tuple[int, float]] = []  # per step: sampled text token, its log-prob
    audio_steps: list[list[tuple[int, float]]] = []  # per step: (token, log-prob) per codebook
    current: dict[str, torch.Tensor | list] = {"audio": []}

    def on_text_logits(logits: torch.Tensor) -> None:
        current["text"] = torch.log_softmax(logits[0, 0, 0].float(), dim=-1)

    def on_text(token: torch.Tensor) -> None:
        text_steps.append((int(token[0]), float(current["text"][token[0]])))

    original = lm.forward_depformer

    def recording_depformer(*args, **kwargs) -> torch.Tensor:
        logits = original(*args, **kwargs)
        current["audio"].append(torch.log_softmax(logits[0, 0, 0].float(), dim=-1))
        return logits

    def on_audio(tokens: torch.Tensor) -> None:
        audio_steps.append([(int(t), float(lp[t])) for t, lp in zip(tokens[0], current["audio"])])
        current["audio"] = []

    lm_gen = LMGen(lm, use_sampling=not greedy, temp=temp, temp_text=temp_text, top_k=top_k, top_k_text=top_k_text,
                   on_text_logits_hook=on_text_logits, on_text_hook=on_text, on_audio_hook=on_audio,
                   support_out_of_sync=True)
    lm.forward_depformer = recording_depformer
    try:
        with lm_gen.streaming(1):
            for n in range(frames + 1):
                lm_gen.step(source_codes[:, max(n - 1, 0)].to(lm.device)[None, :, None])
    finally:
        lm.forward_depformer = original

    codes = torch.full((1 + dep_q + source_codes.shape[0], frames), ZERO_TOKEN, dtype=torch.long)
    logprobs = torch.full((1 + dep_q, frames), float("nan"))
    for t in range(frames):
        codes[0, t], logprobs[0, t] = text_steps[t]
        for k in range(dep_q):
            n = t + lm.delays[1 + k]
            if n < frames:  # later steps' audio lies past what a T-frame training pass predicts
                codes[1 + k, t], logprobs[1 + k, t] = audio_steps[n][k]
    codes[1 + dep_q:] = source_codes.cpu()
    return Rollout(codes, logprobs)


def policy_logprobs(model: torch.nn.Module, lm: LMModel, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Training-side log-probs of `codes` [B, K, T]: ([B, 1 + dep_q, T] log-probs, validity mask)."""
    output = model(codes)
    text = torch.log_softmax(output.text_logits.float().nan_to_num(), dim=-1)
    audio = torch.log_softmax(output.logits.float().nan_to_num(), dim=-1)
    targets = codes[:, :1 + lm.dep_q].clamp(min=0)
    lp = torch.cat([text.gather(-1, targets[:, :1, :, None]), audio.gather(-1, targets[:, 1:, :, None])], dim=1)[..., 0]
    mask = torch.cat([output.text_mask, output.mask], dim=1)
    return lp, mask
