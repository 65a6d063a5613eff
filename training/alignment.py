"""Coarse alignment of sentence-level pairs into one training timeline (Hibiki-Zero recipe).

No word-level alignment between languages is needed: target sentence i starts a random
delay after source sentence i starts, the delay drawn in proportion to the source
sentence's duration, never before the previous target sentence has ended. The model
learns to speak each sentence once enough of it has been heard; the GRPO stage later
pulls the delays down.

The text stream follows moshi's convention: one token per 80 ms frame, PAD (3) where
nothing is said, EPAD (0) on the frame just before a word, the word's tokens from the
frame where it starts; text EOS (2) once the last word is out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sentencepiece import SentencePieceProcessor

from hibiki.audio import FRAME_PERIOD_S
from hibiki.tokens import EOS, EPAD, PAD
from hibiki.words import Word


@dataclass
class AlignmentConfig:
    delay_min_frac: float = 0.0  # target sentence i starts source_start_i + U(min, max) * source_duration_i
    delay_max_frac: float = 0.5
    min_delay_s: float = 0.0  # and at least this long after its source sentence starts
    max_delay_s: float | None = None  # when set, that floor is drawn U(min_delay_s, max_delay_s) per sentence
    sentence_gap_s: float = 0.1  # silence between consecutive target sentences, at least
    comma_pause_prob: float = 0.5  # chance of a random silence at each comma of a target sentence
    comma_pause_min_s: float = 0.1
    comma_pause_max_s: float = 0.4
    tail_s: float = 0.24  # after the last target word, before text EOS (the delayed acoustic codebooks finish)


@dataclass(frozen=True)
class Span:
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def place_targets(sources: Sequence[Span], target_durations: Sequence[float], rng: np.random.Generator,
                  config: AlignmentConfig) -> list[float]:
    """Start time of each target sentence: after its source sentence starts and the previous target ends."""
    starts: list[float] = []
    previous_end = -np.inf
    for source, duration in zip(sources, target_durations, strict=True):
        frac = rng.uniform(config.delay_min_frac, config.delay_max_frac)
        floor = config.min_delay_s if config.max_delay_s is None else rng.uniform(config.min_delay_s, config.max_delay_s)
        start = source.start + max(floor, frac * source.duration)
        start = max(start, previous_end + config.sentence_gap_s)
        starts.append(float(start))
        previous_end = start + duration
    return starts


def text_stream(words: Sequence[Word], n_frames: int, tokenizer: SentencePieceProcessor, min_eos_frame: int = 0) -> np.ndarray:
    """Frame-level text tokens for timed target words, ending with text EOS at or after `min_eos_frame`.

    A word's tokens go on consecutive frames from its start frame, pushed later when the
    previous word's tokens still occupy it (fast speech), so no token is ever dropped.
    """
    tokens = np.full(n_frames, PAD, dtype=np.int64)
    next_free = 0
    for word in words:
        ids = tokenizer.encode(word.text)
        if not ids:
            continue
        first = max(int(round(word.start / FRAME_PERIOD_S)), next_free, 1)
        if first + len(ids) >= n_frames:
            raise ValueError(f"word {word.text!r} at {word.start:.2f} s does not fit in {n_frames} frames")
        if tokens[first - 1] == PAD:
            tokens[first - 1] = EPAD
        tokens[first:first + len(ids)] = ids
        next_free = first + len(ids)
    eos_frame = max(next_free, min_eos_frame, int(np.ceil(max((w.end for w in words), default=0.0) / FRAME_PERIOD_S)))
    if eos_frame >= n_frames:
        raise ValueError(f"text EOS at frame {eos_frame} does not fit in {n_frames} frames")
    tokens[eos_frame] = EOS
    return tokens
