"""Speaker similarity: cosine of speaker embeddings of the source and the output speech.

Embeddings come from Resemblyzer's GE2E voice encoder (its weights ship in the PyPI
package, so this works offline). The papers use a WavLM-based verifier, so absolute values
differ from theirs; comparisons between runs scored here are what it is for.
"""

from __future__ import annotations

import numpy as np
import soxr

from hibiki.audio import SAMPLE_RATE

ENCODER_RATE = 16000


class SpeakerSimilarity:
    def __init__(self, device: str = "cpu") -> None:
        from resemblyzer import VoiceEncoder

        self.encoder = VoiceEncoder("cuda" if device.startswith("cuda") else "cpu", verbose=False)

    def embed(self, pcm: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray | None:
        """Unit-norm embedding, or None when the voice activity detector finds no speech."""
        from resemblyzer import preprocess_wav

        audio = soxr.resample(pcm, sample_rate, ENCODER_RATE).astype(np.float32)
        if audio.size == 0 or np.sqrt(np.mean(audio ** 2)) < 1e-4:  # silence: nothing to embed
            return None
        audio = preprocess_wav(audio, source_sr=ENCODER_RATE)  # loudness-normalised, silences trimmed
        if audio.size < ENCODER_RATE // 4:
            return None
        return self.encoder.embed_utterance(audio)

    def similarity(self, source: np.ndarray, output: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float | None:
        a, b = self.embed(source, sample_rate), self.embed(output, sample_rate)
        if a is None or b is None:
            return None
        return round(float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))), 4)
