"""Offline translation of whole recordings through the streaming engine.

Recordings are streamed exactly as a live client would stream them (80 ms frames, input
EOS at the end, flush until text EOS), several at once, one per slot, so file results
and service results are the same computation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from hibiki.engine import BatchedTranslator, FrameOutput

Key = TypeVar("Key")


@dataclass
class Translation(Generic[Key]):
    key: Key
    input_samples: int
    frames: list[FrameOutput] = field(default_factory=list)
    text: str = ""

    @property
    def pcm(self) -> np.ndarray:
        if not self.frames:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate([f.pcm for f in self.frames])

    @property
    def text_tokens(self) -> list[int]:
        return [f.text_token for f in self.frames]


def translate_pcms(
    translator: BatchedTranslator,
    items: Iterable[tuple[Key, np.ndarray]],
    on_frames: Callable[[int], None] | None = None,
) -> Iterator[Translation[Key]]:
    """Translates (key, 24 kHz mono pcm) items, B at a time; yields each as it completes.

    `on_frames(n)` is told how many output frames each step produced (for progress bars).
    """
    pending = iter(items)
    running: dict[int, Translation[Key]] = {}
    exhausted = False
    while True:
        while not exhausted and translator.free_slots:
            try:
                key, pcm = next(pending)
            except StopIteration:
                exhausted = True
                break
            slot = translator.attach()
            translator.feed(slot, pcm)
            translator.end_input(slot)
            running[slot] = Translation(key=key, input_samples=len(pcm))
        if not running:
            return
        frames = translator.step()
        if on_frames is not None:
            on_frames(len(frames))
        for frame in frames:
            translation = running[frame.slot]
            translation.frames.append(frame)
            if frame.final:
                del running[frame.slot]
                translation.text = translator.decode_text(translation.text_tokens)
                yield translation
