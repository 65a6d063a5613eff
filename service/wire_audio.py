"""Audio as it travels on the wire: decoders for client input, encoders for output.

Input decoders turn each binary message into 24 kHz mono float32 for the scheduler and
raise `WireFormatError` on bytes that cannot be what the session announced. Encoders turn
each 80 ms output frame into the bytes of one binary message (or none yet, for Opus,
which emits whole Ogg pages).
"""

from __future__ import annotations

import numpy as np
import soxr
import sphn

from hibiki.audio import SAMPLE_RATE, is_sphn_panic, pcm16_bytes, pcm16_samples

INPUT_FORMATS = ("opus", "pcm16", "f32")
OUTPUT_FORMATS = ("opus", "pcm16", "f32", "none")
OGG_CAPTURE = b"OggS"


class WireFormatError(ValueError):
    """Bytes that do not decode as the announced audio format."""


class OpusDecoder:
    """Ogg/Opus pages (what Kyutai's clients and `sphn.OpusStreamWriter` send), one or more per message."""

    def __init__(self) -> None:
        self._reader = sphn.OpusStreamReader(SAMPLE_RATE)

    def decode(self, payload: bytes) -> np.ndarray:
        # sphn buffers bytes that are not an Ogg page forever; refuse them at once instead.
        if not payload.startswith(OGG_CAPTURE):
            raise WireFormatError(f"audio payload does not start with an Ogg page (got {payload[:4]!r}); "
                                  "expected Ogg/Opus pages, 24 kHz mono")
        try:
            return np.asarray(self._reader.append_bytes(payload), dtype=np.float32)
        except BaseException as exc:  # noqa: B036 - ValueError for bad data, or a panic inside sphn
            if not (isinstance(exc, ValueError) or is_sphn_panic(exc)):
                raise
            raise WireFormatError(f"broken Ogg/Opus stream ({exc})") from None

    def flush(self) -> np.ndarray:
        return np.zeros(0, dtype=np.float32)


class PcmDecoder:
    """Raw little-endian PCM16 or float32 samples at any rate, resampled to 24 kHz with soxr."""

    def __init__(self, sample_format: str, sample_rate: int) -> None:
        self._dtype = np.dtype("<i2") if sample_format == "pcm16" else np.dtype("<f4")
        self._format = sample_format
        self._resampler = None if sample_rate == SAMPLE_RATE else soxr.ResampleStream(
            sample_rate, SAMPLE_RATE, 1, dtype="float32")

    def decode(self, payload: bytes) -> np.ndarray:
        if len(payload) % self._dtype.itemsize:
            raise WireFormatError(f"{self._format} message of {len(payload)} bytes is not a whole number of "
                                  f"{self._dtype.itemsize}-byte samples")
        pcm = pcm16_samples(payload) if self._format == "pcm16" else np.frombuffer(payload, dtype="<f4").copy()
        if self._resampler is not None:
            pcm = self._resampler.resample_chunk(pcm)
        return pcm

    def flush(self) -> np.ndarray:
        """The resampler's last samples, at the end of input."""
        if self._resampler is None:
            return np.zeros(0, dtype=np.float32)
        return self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)


def make_decoder(sample_format: str, sample_rate: int) -> OpusDecoder | PcmDecoder:
    if sample_format == "opus":
        return OpusDecoder()
    return PcmDecoder(sample_format, sample_rate)


class Encoder:
    """One output frame -> the payload of one binary message (b'' when there is nothing to send yet)."""

    def __init__(self, sample_format: str) -> None:
        self.format = sample_format
        self._writer = sphn.OpusStreamWriter(SAMPLE_RATE) if sample_format == "opus" else None

    def encode(self, pcm: np.ndarray) -> bytes:
        if self._writer is not None:
            return self._writer.append_pcm(pcm)
        if self.format == "pcm16":
            return pcm16_bytes(pcm)
        if self.format == "f32":
            return pcm.astype("<f4").tobytes()
        return b""
