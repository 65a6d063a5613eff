"""Latency of simultaneous translation from output word times, in seconds.

A word's delay d_i is when it has been fully emitted: the end of the word in the output
speech (ASR word timestamps, SimulEval's end-of-word alignment) or the end of its last
token frame in the text stream. Times are model time, on the same clock as the source
(output frame t is produced with input frame t), as the papers measure them on the output
audio. |X| is the source duration.
"""

from __future__ import annotations

from collections.abc import Sequence


def laal(delays: Sequence[float], source_s: float, reference_words: int) -> float | None:
    """Length-Adaptive Average Lagging (Papi et al. 2022).

    LAAL = 1/tau * sum_{i=1..tau} (d_i - (i-1) * |X| / max(|Y|, |Y*|)), where |Y| is the
    output length in words, |Y*| the reference length, and tau the index of the first word
    emitted once the whole source has been heard (d_i >= |X|), or |Y| if none is. Taking
    max(|Y|, |Y*|) keeps over-long outputs from being rewarded with a low lag. If the first
    word comes after the source ended, LAAL is that delay (as in SimulEval). None without
    output words.
    """
    if not delays:
        return None
    if delays[0] > source_s:
        return float(delays[0])
    rate = source_s / max(len(delays), reference_words)  # seconds of source per ideal output word
    total, tau = 0.0, 0
    for i, d in enumerate(delays):
        total += d - i * rate
        tau = i + 1
        if d >= source_s:
            break
    return total / tau


def end_offset(delays: Sequence[float], source_s: float) -> float | None:
    """End Offset: when the last output word ends, minus the end of the source."""
    return float(delays[-1] - source_s) if delays else None


def start_offset(starts: Sequence[float]) -> float | None:
    """Start Offset: when the first output word starts (from the source start)."""
    return float(starts[0]) if starts else None
