"""Sampling rollouts with their log-probabilities, on the training alignment.

A rollout is one streamed translation of a source, stepped by `hibiki.stream_lm.StreamLM`
exactly as the engine steps a stream (the checkpoint's priming, then one step per source
frame), while a recorder keeps the log-prob of every sampled token under the model's raw
logits. Tokens are then laid out per real frame, undoing the acoustic delays: the layout
`LMModel.forward` trains on. So the policy log-probs GRPO recomputes in training are those
seen while sampling, and greedy rollouts are the engine's greedy output
(tests/test_grpo_rollout.py checks both).

After priming, step n samples text for frame n and audio codebook k for frame n - delay_k;
source frame t is fed at step t + 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from moshi.models import LMModel
from trl.trainer.utils import selective_log_softmax

from hibiki.checkpoint import Checkpoint
from hibiki.sampling import Sampling
from hibiki.stream_lm import StreamLM
from hibiki.tokens import ZERO_TOKEN


@dataclass
class Rollout:
    codes: torch.Tensor  # [B, 1 + dep_q + n_src, T] long, training layout; -1 where nothing was generated
    logprobs: torch.Tensor  # [B, 1 + dep_q, T] float: log-prob of each generated token; NaN where none


@dataclass
class _Recorder:
    """Per step: sampled tokens and their log-probs under the raw logits (`hibiki.stream_lm.Recorder`)."""

    text: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)  # tokens [B], log-probs [B]
    audio: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)  # tokens [B, dep_q], log-probs
    _text_logprobs: torch.Tensor | None = None
    _audio_logprobs: list[torch.Tensor] = field(default_factory=list)

    def text_logits(self, logits: torch.Tensor) -> None:
        self._text_logprobs = torch.log_softmax(logits.float(), dim=-1)

    def text_tokens(self, tokens: torch.Tensor) -> None:
        assert self._text_logprobs is not None
        self.text.append((tokens.cpu(), self._text_logprobs.gather(-1, tokens[:, None])[:, 0].cpu()))

    def audio_logits(self, logits: torch.Tensor) -> None:
        self._audio_logprobs.append(torch.log_softmax(logits.float(), dim=-1))

    def audio_tokens(self, tokens: torch.Tensor) -> None:
        logprobs = torch.stack([lp.gather(-1, tokens[:, k, None])[:, 0] for k, lp in enumerate(self._audio_logprobs)], dim=1)
        self.audio.append((tokens.cpu(), logprobs.cpu()))
        self._audio_logprobs = []


@torch.no_grad()
def sample_rollouts(checkpoint: Checkpoint, sources: Sequence[torch.Tensor], sampling: Sampling) -> Rollout:
    """One rollout per source, all sampled side by side as one batch: on a CPU a batch of 16
    streams costs a few times one stream, not 16 times. Each source [n_src, T_b] is a source
    stream as the engine feeds it (input EOS included); a GRPO group repeats one.

    Sources of different lengths are padded to the longest with the zero token (fed as code
    0): the model is causal, so frames past a source's end change nothing before it; they are
    blanked (-1 / NaN) in the result.
    """
    lm = checkpoint.lm
    lengths = torch.tensor([s.shape[1] for s in sources])
    frames = int(lengths.max())
    batch = len(sources)
    padded = torch.stack([torch.nn.functional.pad(s.cpu(), (0, frames - s.shape[1]), value=ZERO_TOKEN) for s in sources])
    recorder = _Recorder()
    with StreamLM(checkpoint, batch, sampling, recorder) as stream:
        fed = torch.cat([stream.priming[None].expand(batch, -1, -1), padded.clamp(min=0).to(lm.device)], dim=2)
        every = torch.ones(batch, dtype=torch.bool, device=lm.device)
        for n in range(fed.shape[-1]):
            stream.step(fed[:, :, n, None], every)
        skip = stream.priming.shape[-1] - 1  # the priming steps before the last one sample before frame 0
    text, audio = recorder.text[skip:], recorder.audio[skip:]

    dep_q = lm.dep_q
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
