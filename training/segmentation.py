"""Time spans of known texts inside a recording, without an aligner.

Used where a dataset gives what was said but not when: sentence spans from a transcript,
word times of a provided target recording. Each text gets a share of the voiced span in
proportion to its length in characters, and every boundary then moves to the middle of
the nearest pause when one is close: speakers pause between sentences, so sentence spans
come out right to a pause; word times are coarser, which the coarse alignment tolerates.
"""

from __future__ import annotations

import numpy as np

from hibiki.audio import VOICE_HOP_S as HOP_S
from hibiki.audio import voiced_hops

MIN_PAUSE_S = 0.15
SNAP_S = 1.0  # a boundary moves to a pause at most this far away


def pauses(mask: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) in seconds of unvoiced runs of at least MIN_PAUSE_S between voiced hops."""
    runs, start = [], None
    for i, v in enumerate(mask):
        if not v and start is None:
            start = i
        elif v and start is not None:
            if start > 0 and (i - start) * HOP_S >= MIN_PAUSE_S:
                runs.append((start * HOP_S, i * HOP_S))
            start = None
    return runs


def estimate_spans(pcm: np.ndarray, texts: list[str]) -> list[tuple[float, float]]:
    mask = voiced_hops(pcm)
    hops = np.flatnonzero(mask)
    if not texts or hops.size == 0:
        raise ValueError("no speech found to place the texts in")
    first, last = float(hops[0] * HOP_S), float((hops[-1] + 1) * HOP_S)
    lengths = np.array([max(len(t), 1) for t in texts], dtype=float)
    cuts = first + (last - first) * np.cumsum(lengths)[:-1] / lengths.sum()
    gaps = pauses(mask)
    spans, start = [], first
    for cut in cuts:
        near = [g for g in gaps if abs((g[0] + g[1]) / 2 - cut) <= SNAP_S and g[0] > start]
        if near:
            gap = min(near, key=lambda g: abs((g[0] + g[1]) / 2 - cut))
            spans.append((start, gap[0]))
            start = gap[1]
        else:
            spans.append((start, float(cut)))
            start = float(cut)
    spans.append((start, last))
    return [(round(a, 3), round(b, 3)) for a, b in spans]
