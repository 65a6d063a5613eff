"""Text-to-speech for building training and evaluation audio.

The pipeline needs target speech for every translated sentence (and the demo corpus needs
source speech too). `Espeak` is the offline default: Debian's `espeak-ng`, installed by
`scripts/setup.sh`, robotic but intelligible to Whisper and fast on one core. A neural TTS
with voice transfer plugs in by implementing `TTS`.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from hibiki.audio import SAMPLE_RATE, read_audio_bytes


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


class TTS(Protocol):
    def speak(self, text: str, voice: Voice) -> np.ndarray:
        """Returns 24 kHz mono float32 speech for `text`."""
        ...


class Espeak:
    """espeak-ng through its command line (one process per text, WAV on stdout)."""

    def __init__(self, binary: str = "espeak-ng") -> None:
        path = shutil.which(binary)
        if path is None:
            raise TTSError(f"{binary} not found: install Debian's espeak-ng (scripts/setup.sh does it as root)")
        self.binary = path

    def speak(self, text: str, voice: Voice) -> np.ndarray:
        command = [self.binary, "--stdout", "-v", voice.espeak_voice, "-s", str(voice.rate_wpm), "-p", str(voice.pitch), text]
        result = subprocess.run(command, capture_output=True, timeout=60)
        if result.returncode != 0 or not result.stdout:
            raise TTSError(f"espeak-ng failed on {text!r} with voice {voice.espeak_voice}: {result.stderr.decode(errors='replace')}")
        return read_audio_bytes(result.stdout, f"espeak-ng {voice.espeak_voice}", SAMPLE_RATE)

