"""Text-to-speech for building training and evaluation audio.

The pipeline needs target speech, with word times, for every translated sentence (the
text stream is aligned to them); the demo corpus needs source speech too. `Espeak` is
the offline default: Debian's `espeak-ng`, installed by `scripts/setup.sh`, robotic but
intelligible to Whisper and fast on one core. A neural TTS (with voice transfer from the
source speaker, as Hibiki-Zero does) plugs in by implementing `TTS.speak`.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import numpy as np

from hibiki.audio import SAMPLE_RATE, read_audio_bytes
from hibiki.words import Word

VOICED_THRESHOLD = 0.01  # |sample| above this is speech in espeak-ng's clean output


class TTSError(RuntimeError):
    """The TTS could not speak a text (missing engine, unknown voice...)."""


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice: language + variant (e.g. 'fr' + 'm3'), words per minute, pitch 0-99."""

    name: str = "en-us"
    variant: str | None = None
    rate_wpm: int = 160
    pitch: int = 50

    @property
    def espeak_voice(self) -> str:
        return f"{self.name}+{self.variant}" if self.variant else self.name


@dataclass
class Speech:
    pcm: np.ndarray  # 24 kHz mono float32
    words: list[Word]  # times in seconds from the start of pcm

    @property
    def duration(self) -> float:
        return len(self.pcm) / SAMPLE_RATE


class TTS(Protocol):
    def speak(self, text: str, voice: Voice) -> Speech:
        """Speech for `text` with the time span of each whitespace-separated word."""
        ...


class Espeak:
    """espeak-ng through its command line (WAV on stdout).

    espeak-ng reports no word times on its command line, so each word is also spoken
    alone (cached) and the text's voiced span is shared among its words in proportion to
    those lengths; espeak-ng's rule-based durations make this accurate to a frame or so
    for a clause. Texts with internal pauses (commas) are spoken clause by clause by the
    data pipeline (`join_speech`), which also inserts its random pauses there.
    """

    def __init__(self, binary: str = "espeak-ng", timeout_s: float = 60.0) -> None:
        path = shutil.which(binary)
        if path is None:
            raise TTSError(f"{binary} not found: install Debian's espeak-ng (scripts/setup.sh does it as root)")
        self.binary = path
        self.timeout_s = timeout_s
        self._word_length = lru_cache(maxsize=100_000)(self._voiced_length)

    def speak(self, text: str, voice: Voice) -> Speech:
        pcm = self.synthesize(text, voice)
        tokens = text.split()
        voiced = np.flatnonzero(np.abs(pcm) > VOICED_THRESHOLD)
        if not tokens or voiced.size == 0:
            return Speech(pcm, [])
        first, last = voiced[0] / SAMPLE_RATE, (voiced[-1] + 1) / SAMPLE_RATE
        lengths = np.array([max(self._word_length(token, voice), 1e-3) for token in tokens])
        bounds = first + (last - first) * np.concatenate([[0.0], np.cumsum(lengths)]) / lengths.sum()
        words = [Word(token, round(float(a), 3), round(float(b), 3)) for token, a, b in zip(tokens, bounds[:-1], bounds[1:])]
        return Speech(pcm, words)

    def synthesize(self, text: str, voice: Voice) -> np.ndarray:
        """One retry after a timeout: a stalled machine (a paused job, a swapping host) is not the text's fault."""
        command = [self.binary, "--stdout", "-v", voice.espeak_voice, "-s", str(voice.rate_wpm), "-p", str(voice.pitch), text]
        for _ in range(2):
            try:
                result = subprocess.run(command, capture_output=True, timeout=self.timeout_s)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            raise TTSError(f"espeak-ng timed out twice ({self.timeout_s:g} s) on {text!r} with voice {voice.espeak_voice}")
        if result.returncode != 0 or not result.stdout:
            raise TTSError(f"espeak-ng failed on {text!r} with voice {voice.espeak_voice}: {result.stderr.decode(errors='replace')}")
        return read_audio_bytes(result.stdout, f"espeak-ng {voice.espeak_voice}", SAMPLE_RATE)

    def variants(self) -> set[str]:
        """Voice variant names this espeak-ng knows: it falls back silently on any other name."""
        result = subprocess.run([self.binary, "--voices=variant"], capture_output=True, text=True, timeout=60)
        return {line.split()[4].removeprefix("!v/") for line in result.stdout.splitlines()[1:] if len(line.split()) >= 5}

    def _voiced_length(self, word: str, voice: Voice) -> float:
        voiced = np.flatnonzero(np.abs(self.synthesize(word, voice)) > VOICED_THRESHOLD)
        return (voiced[-1] - voiced[0] + 1) / SAMPLE_RATE if voiced.size else 0.0


def join_speech(parts: list[Speech], pauses_s: list[float]) -> Speech:
    """Concatenates speech with a silence after each part but the last, shifting word times."""
    chunks, words, offset = [], [], 0.0
    for index, part in enumerate(parts):
        chunks.append(part.pcm)
        words += [Word(w.text, round(w.start + offset, 3), round(w.end + offset, 3)) for w in part.words]
        offset += part.duration
        if index < len(parts) - 1:
            gap = np.zeros(round(pauses_s[index] * SAMPLE_RATE), dtype=np.float32)
            chunks.append(gap)
            offset += len(gap) / SAMPLE_RATE
    return Speech(np.concatenate(chunks) if chunks else np.zeros(0, np.float32), words)


def speak_sentences(tts: TTS, sentences: list[str], voice: Voice, pause_s: float) -> tuple[Speech, list[tuple[float, float]]]:
    """Several sentences with a pause between them, and each sentence's (start, end) in seconds."""
    parts = [tts.speak(sentence, voice) for sentence in sentences]
    spans, offset = [], 0.0
    for part in parts:
        spans.append((round(offset, 3), round(offset + part.duration, 3)))
        offset += part.duration + pause_s
    return join_speech(parts, [pause_s] * (len(parts) - 1)), spans
