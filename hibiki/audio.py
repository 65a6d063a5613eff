"""Reading and writing audio: whatever sphn (files) or soundfile (bytes) decodes, as 24 kHz mono float32.

A leaf of the project (it imports none of it): the stream constants and the PCM16 wire
form live here for the service, the benches and the tests alike.
"""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import soundfile
import soxr
import sphn

SAMPLE_RATE = 24000
FRAME_SIZE = 1920  # 80 ms at 24 kHz: one Mimi frame, one model step.
FRAME_PERIOD_S = FRAME_SIZE / SAMPLE_RATE
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 192000
ACCEPTED = (f"wav, flac, mp3, ogg/vorbis and the other formats sphn (symphonia) decodes, sample rates from "
            f"{MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz, mono or multi-channel")
# Formats libsndfile reads in full: a header of one of these that it cannot parse is broken,
# and is refused before sphn, which panics on some (a zero sample rate).
_LIBSNDFILE_MAGIC = (b"RIFF", b"RF64", b"fLaC", b"OggS", b"FORM")


class AudioError(ValueError):
    """Audio that cannot be used, with a message naming the file and what is accepted."""


class AudioTooLong(AudioError):
    """Audio whose header claims more than the caller's limit; nothing was decoded."""


def is_sphn_panic(exc: BaseException) -> bool:
    """A Rust panic inside sphn: pyo3 raises it as a BaseException, not an Exception."""
    return type(exc).__name__ == "PanicException"


def check_sample_rate(rate: float, name: str) -> None:
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(f"{name}: sample rate {rate:g} Hz; accepted: {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz")


def audio_seconds(path: str | Path) -> float | None:
    """The duration a file's header claims, read without decoding it (None: the header does
    not say), its sample rate checked: so that a small file claiming hours, or 1 Hz, costs
    nothing to refuse."""
    path = Path(path)
    try:
        info = soundfile.info(str(path))
    except Exception as exc:  # libsndfile reports every problem as its own error type
        with path.open("rb") as f:
            if f.read(4) in _LIBSNDFILE_MAGIC:
                raise AudioError(f"{path}: broken audio header ({exc}); accepted: {ACCEPTED}") from None
        try:
            (seconds,) = sphn.durations([str(path)])
        except BaseException as exc:  # noqa: B036 - sphn's panics, see is_sphn_panic
            if not (isinstance(exc, Exception) or is_sphn_panic(exc)):
                raise
            raise AudioError(f"{path}: cannot decode as audio ({exc}); accepted: {ACCEPTED}") from None
        return seconds
    check_sample_rate(info.samplerate, str(path))
    return info.duration if info.frames > 0 else None


def read_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, max_seconds: float | None = None) -> np.ndarray:
    """Returns mono float32 samples at `sample_rate`, channels averaged. With `max_seconds`,
    a header claiming more is refused (AudioTooLong) before anything is decoded."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    seconds = audio_seconds(path)
    if max_seconds is not None and seconds is not None and seconds > max_seconds:
        raise AudioTooLong(f"{path}: {seconds:.1f} s of audio exceeds the limit of {max_seconds:g} s")
    try:
        pcm, rate = sphn.read(str(path))
    except BaseException as exc:  # noqa: B036 - ValueError/OSError for bad data, or a panic
        if not (isinstance(exc, Exception) or is_sphn_panic(exc)):
            raise
        raise AudioError(f"{path}: cannot decode as audio ({exc}); accepted: {ACCEPTED}") from None
    return _mono_at_rate(np.asarray(pcm, dtype=np.float32), rate, sample_rate, str(path))


def read_audio_bytes(data: bytes, name: str, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Like `read_audio`, for an encoded file held in memory (a dataset's audio bytes)."""
    try:
        pcm, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile reports every decoding problem as its own error type
        raise AudioError(f"{name}: cannot decode as audio ({exc}); accepted: wav, flac, ogg, mp3") from exc
    return _mono_at_rate(pcm.T, rate, sample_rate, name)


def read_audio_field(value, name: str, base_dir: Path | None = None) -> np.ndarray:
    """Decodes a dataset's audio cell: a path (relative to `base_dir`), or a `datasets.Audio`
    cell read with decode=False ({"bytes", "path"})."""
    if isinstance(value, str):
        path = Path(value)
        return read_audio(base_dir / path if base_dir is not None and not path.is_absolute() else path)
    if isinstance(value, dict) and value.get("bytes"):
        return read_audio_bytes(value["bytes"], value.get("path") or name)
    if isinstance(value, dict) and value.get("path"):
        return read_audio_field(value["path"], name, base_dir)
    raise AudioError(f"{name}: the audio cell holds {type(value).__name__}; accepted: a path, or a datasets Audio feature")


def _mono_at_rate(pcm: np.ndarray, rate: int, sample_rate: int, name: str) -> np.ndarray:
    """pcm is [samples] or [channels, samples]."""
    if pcm.ndim == 2:
        pcm = pcm.mean(axis=0)
    if pcm.size == 0:
        raise AudioError(f"{name}: no audio samples (the file is empty)")
    check_sample_rate(rate, name)
    if rate != sample_rate:
        # soxr, not sphn.resample: the latter delays the signal by tens of ms, which would
        # shift every latency measured against the source.
        pcm = soxr.resample(pcm, rate, sample_rate).astype(np.float32, copy=False)
    try:
        return as_pcm(pcm)
    except AudioError as exc:
        raise AudioError(f"{name}: {exc}") from None


def as_pcm(samples: np.ndarray) -> np.ndarray:
    """1-D float32 samples, refusing NaN and infinities (they would poison the codec state)."""
    pcm = np.asarray(samples, dtype=np.float32).reshape(-1)
    if not np.isfinite(pcm).all():
        raise AudioError("the audio holds NaN or infinite samples")
    return pcm


VOICE_HOP_S = 0.01
VOICE_FLOOR_DB = -35.0


def voiced_hops(pcm: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Per 10 ms hop: is it voiced, i.e. within 35 dB of the loudest hop (and not digital silence)?

    A level relative to the recording's own peak works for any gain; used to find pauses
    and to bound word times."""
    hop = round(VOICE_HOP_S * sample_rate)
    n = len(pcm) // hop
    if n == 0:
        return np.zeros(0, dtype=bool)
    rms = np.sqrt(np.mean(pcm[:n * hop].reshape(n, hop) ** 2, axis=1))
    return rms > max(rms.max() * 10 ** (VOICE_FLOOR_DB / 20), 1e-5)


def pcm16_bytes(pcm: np.ndarray) -> bytes:
    """Float samples as little-endian 16-bit PCM, clipped to [-1, 1]."""
    return (np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes()


def pcm16_samples(data: bytes) -> np.ndarray:
    """Little-endian 16-bit PCM as float32 samples in [-1, 1)."""
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768


def wav_bytes(pcm: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """A mono 16-bit WAV file in memory."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm16_bytes(pcm))
    return buffer.getvalue()


def write_wav(path: str | Path, pcm: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    sphn.write_wav(str(path), np.asarray(pcm, dtype=np.float32), sample_rate=sample_rate)
