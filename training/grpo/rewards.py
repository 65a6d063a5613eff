"""Rewards and advantages of Hibiki-Zero's GRPO stage.

No latency term: at checkpoints (the end of every n-th source word) the text the rollout
has emitted so far is scored with BLEU against the references of every source sentence
started by then; a word said early raises the checkpoint BLEU while it lasts, a word said
late does not, a wrong word raises none. Each checkpoint's reward mixes that intermediate
BLEU with the final BLEU of the whole output: r_k = lambda * BLEU_k + (1 - lambda) * BLEU_final.

Advantages: rewards are normalised per checkpoint across the G rollouts of one source
(mean 0, std 1), and a step's advantage is the sum of the normalised rewards of the
checkpoints at or after it (reward-to-go): an early token is credited with everything it
made possible, a late one only with what is left.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sacrebleu.metrics import BLEU
from trl.trainer.utils import nanstd

from hibiki.audio import FRAME_PERIOD_S
from hibiki.words import Word

_BLEU = BLEU(effective_order=True)


@dataclass(frozen=True)
class RewardCheckpoint:
    time: float  # seconds of source
    reference: str  # references of the sentences started by then


def checkpoints(source_words: Sequence[Word], sentences: Sequence[tuple[float, str]], every: int,
                source_end: float) -> list[RewardCheckpoint]:
    """At the end of every `every`-th source word, and at the end of the source.

    `sentences`: (source start, reference translation) per sentence, in order.
    """
    times = [w.end for w in source_words[every - 1::every]]
    if not times or times[-1] < source_end:
        times.append(source_end)
    out = []
    for t in times:
        started = [ref for start, ref in sentences if start <= t]
        out.append(RewardCheckpoint(t, " ".join(started)))
    return out


def emitted_by(words: Sequence[Word], time: float) -> str:
    """The output text whose words had been fully emitted at `time`."""
    return " ".join(w.text for w in words if w.end <= time)


def rollout_rewards(output_words: Sequence[Word], marks: Sequence[RewardCheckpoint], final_reference: str,
                    mix: float = 0.5) -> np.ndarray:
    """r_k for one rollout, one per checkpoint (BLEU on the 0-100 scale)."""
    final = _BLEU.sentence_score(" ".join(w.text for w in output_words), [final_reference]).score
    partial = [_BLEU.sentence_score(emitted_by(output_words, m.time), [m.reference]).score if m.reference else 0.0
               for m in marks]
    return np.array([mix * p + (1 - mix) * final for p in partial], dtype=np.float64)


def group_advantages(rewards: torch.Tensor, checkpoint_frames: Sequence[int], n_frames: int, eps: float = 1e-4) -> torch.Tensor:
    """[G, K] rewards of one group -> [G, n_frames] per-step advantages (reward-to-go).

    A checkpoint at frame f credits every step t <= f; checkpoints where every rollout got
    the same reward carry no signal (their normalised reward is 0, not NaN).
    """
    mean = torch.nanmean(rewards, dim=0, keepdim=True)
    std = nanstd(rewards, dim=0, keepdim=True)
    normalised = torch.nan_to_num((rewards - mean) / (std + eps), nan=0.0)
    advantages = torch.zeros(rewards.shape[0], n_frames, dtype=rewards.dtype)
    for k, frame in enumerate(checkpoint_frames):
        advantages[:, :min(frame, n_frames - 1) + 1] += normalised[:, k:k + 1]
    return advantages


def checkpoint_frames(marks: Sequence[RewardCheckpoint]) -> list[int]:
    return [int(np.ceil(m.time / FRAME_PERIOD_S)) for m in marks]
