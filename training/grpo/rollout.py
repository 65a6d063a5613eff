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

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from moshi.models import LMGen, LMModel
from trl.trainer.utils import selective_log_softmax

from hibiki.tokens import ZERO_TOKEN


@dataclass
class Rollout:
    codes: torch.Tensor  # [B, 1 + dep_q + n_src, T] long, training layout; -1 where nothing was generated
    logprobs: torch.Tensor  # [B, 1 + dep_q, T] float: log-prob of each generated token; NaN where none


@torch.no_grad()
def sample_rollouts(lm: LMModel, sources: Sequence[torch.Tensor], temp: float = 0.8, top_k: int = 250,
                    temp_text: float = 0.8, top_k_text: int = 25, greedy: bool = False) -> Rollout:
    """One rollout per source, all sampled side by side as one LMGen batch: on a CPU a batch
    of 16 streams costs a few times one stream, not 16 times. Each source [n_src, T_b] is a
    source stream as the engine feeds it (input EOS included); a GRPO group repeats one.

    Sources of different lengths are padded to the longest with the zero token (fed as code
    0): the model is causal, so frames past a source's end change nothing before it; they are
    blanked (-1 / NaN) in the result.
    """
    lengths = torch.tensor([s.shape[1] for s in sources])
    frames = int(lengths.max())
    batch = len(sources)
    padded = torch.stack([torch.nn.functional.pad(s.cpu(), (0, frames - s.shape[1]), value=ZERO_TOKEN) for s in sources])
    fed = padded.clamp(min=0).to(lm.device)
    dep_q = lm.dep_q
    text: list[tuple[torch.Tensor, torch.Tensor]] = []  # per step: sampled text tokens [B], their log-probs [B]
    audio: list[tuple[torch.Tensor, torch.Tensor]] = []  # per step: tokens [B, dep_q], log-probs [B, dep_q]
    current: dict[str, torch.Tensor | list] = {"audio": []}

    def on_text_logits(logits: torch.Tensor) -> None:
        current["text"] = torch.log_softmax(logits[:, 0, 0].float(), dim=-1)

    def on_text(tokens: torch.Tensor) -> None:
        text.append((tokens.cpu(), current["text"].gather(-1, tokens[:, None])[:, 0].cpu()))

    original = lm.forward_depformer

    def recording_depformer(*args, **kwargs) -> torch.Tensor:
        logits = original(*args, **kwargs)
        current["audio"].append(torch.log_softmax(logits[:, 0, 0].float(), dim=-1))
        return logits

    def on_audio(tokens: torch.Tensor) -> None:
        logprobs = torch.stack([lp.gather(-1, tokens[:, k, None])[:, 0] for k, lp in enumerate(current["audio"])], dim=1)
        audio.append((tokens.cpu(), logprobs.cpu()))
        current["audio"] = []

    lm_gen = LMGen(lm, use_sampling=not greedy, temp=temp, temp_text=temp_text, top_k=top_k, top_k_text=top_k_text,
                   on_text_logits_hook=on_text_logits, on_text_hook=on_text, on_audio_hook=on_audio,
                   support_out_of_sync=True)
    lm.forward_depformer = recording_depformer
    try:
        with lm_gen.streaming(batch):
            for n in range(frames + 1):
                lm_gen.step(fed[:, :, max(n - 1, 0), None])
    finally:
        lm.forward_depformer = original

    codes = torch.full((batch, 1 + dep_q + padded.shape[1], frames), ZERO_TOKEN, dtype=torch.long)
    logprobs = torch.full((batch, 1 + dep_q, frames), float("nan"))
    codes[:, 0] = torch.stack([tokens for tokens, _ in text[:frames]], dim=1)
    logprobs[:, 0] = torch.stack([lp for _, lp in text[:frames]], dim=1)
    for k in range(dep_q):
        # Step n samples codebook k for frame n - delay_k; later steps' audio lies past what a
        # T-frame training pass predicts.
        steps = range(lm.delays[1 + k], frames)
        codes[:, 1 + k, :len(steps)] = torch.stack([audio[n][0][:, k] for n in steps], dim=1)
        logprobs[:, 1 + k, :len(steps)] = torch.stack([audio[n][1][:, k] for n in steps], dim=1)
    codes[:, 1 + dep_q:] = padded
    # Blank what lies past each source's own end, as a rollout of that source alone would.
    step_of = torch.arange(frames)[None, :] + torch.tensor(lm.delays[:1 + dep_q])[:, None]  # [1 + dep_q, T]
    past_end = step_of[None] >= lengths[:, None, None]
    codes[:, :1 + dep_q][past_end] = ZERO_TOKEN
    logprobs[past_end] = float("nan")
    return Rollout(codes, logprobs)


def policy_logprobs(model: torch.nn.Module, lm: LMModel, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Training-side log-probs of `codes` [B, K, T]: ([B, 1 + dep_q, T] log-probs, validity mask)."""
    output = model(codes)
    targets = codes[:, :1 + lm.dep_q].clamp(min=0)
    lp = torch.cat([selective_log_softmax(output.text_logits.float().nan_to_num(), targets[:, :1]),
                    selective_log_softmax(output.logits.float().nan_to_num(), targets[:, 1:])], dim=1)
    mask = torch.cat([output.text_mask, output.mask], dim=1)
    return lp, mask
