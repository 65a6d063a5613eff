"""One training example from one source recording and its sentence-level translations.

The example holds, per 80 ms frame t, exactly what the streaming engine sees and must
produce at that frame: the source codes the engine would encode from the live input
(Mimi in streaming mode; the input-EOS frame, every code = Mimi's cardinality, right
after the last source frame; then encoded silence; all as the checkpoint's
`StreamConvention` says), the target codes of the placed
target speech, and the text stream. Training and inference share this alignment, which
`tests/test_training_sft.py` checks by translating a memorised example back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from moshi.models import MimiModel
from sentencepiece import SentencePieceProcessor

from hibiki.audio import FRAME_PERIOD_S, FRAME_SIZE, SAMPLE_RATE
from hibiki.stream_convention import StreamConvention
from hibiki.words import Word
from training.alignment import EOS, AlignmentConfig, Span, place_targets, text_stream
from training.segmentation import estimate_spans
from training.tts import TTS, Speech, Voice, join_speech


class ExampleError(ValueError):
    """An input that cannot become an example; `reason` is the report's counter name."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Sentence:
    start: float  # source sentence span, seconds
    end: float
    translation: str
    text: str = ""  # source transcript, optional
    target_audio: np.ndarray | None = None  # a provided target recording instead of the TTS


def parse_sentences(value: Any, source: np.ndarray, read_cell: Callable[[Any, str], np.ndarray]) -> list[Sentence]:
    """Validates a row's `sentences` cell: [{start, end, translation, text?, target_audio?}, ...].

    Without start/end on any sentence, the spans are estimated from the source transcript
    (`text` of every sentence) over the recording's pauses (training/segmentation.py).
    `read_cell` decodes a `target_audio` cell (path or datasets Audio) to 24 kHz pcm.
    """
    if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
        raise ExampleError("bad_sentences", "sentences must be a non-empty list of {start, end, translation} "
                           "or {text, translation}")
    source_s = len(source) / SAMPLE_RATE
    timed = ["start" in v and "end" in v for v in value]
    if not any(timed):
        texts = [str(v.get("text") or "").strip() for v in value]
        if not all(texts):
            raise ExampleError("bad_sentences", "sentences without start/end need the source transcript `text` of each")
        try:
            spans = estimate_spans(source, texts)
        except ValueError as exc:
            raise ExampleError("bad_audio", str(exc)) from None
        value = [dict(v, start=a, end=b) for v, (a, b) in zip(value, spans)]
    elif not all(timed):
        raise ExampleError("bad_sentences", "either every sentence has start/end or none has")
    sentences = []
    for i, item in enumerate(value):
        try:
            sentence = Sentence(float(item["start"]), float(item["end"]), str(item["translation"]).strip(), str(item.get("text") or ""))
        except (KeyError, TypeError, ValueError) as exc:
            raise ExampleError("bad_sentences", f"sentence {i}: {exc!r}; expected start, end, translation") from None
        previous_start = sentences[-1].start if sentences else 0.0
        if not (previous_start <= sentence.start < sentence.end <= source_s + 0.5) or not sentence.translation:
            raise ExampleError("bad_timestamps", f"sentence {i} spans {sentence.start}-{sentence.end} s "
                               f"in {source_s:.2f} s of audio (or has no translation)")
        if item.get("target_audio") is not None:
            sentence.target_audio = read_cell(item["target_audio"], f"sentence {i} target audio")
        sentences.append(sentence)
    return sentences


def provided_speech(pcm: np.ndarray, text: str) -> Speech:
    """A given target recording, its word times estimated over its pauses."""
    words = text.split()
    try:
        spans = estimate_spans(pcm, words)
    except ValueError as exc:
        raise ExampleError("bad_audio", f"target audio: {exc}") from None
    return Speech(pcm, [Word(w, a, b) for w, (a, b) in zip(words, spans)])


def speak_sentence(tts: TTS, text: str, voice: Voice, rng: np.random.Generator, config: AlignmentConfig) -> Speech:
    """Clause by clause, with a random silence at some commas (the recipe's pauses)."""
    clauses = [c for c in re.split(r"(?<=,)\s+", text) if c]
    parts = [tts.speak(clause, voice) for clause in clauses]
    pauses = [rng.uniform(config.comma_pause_min_s, config.comma_pause_max_s) if rng.random() < config.comma_pause_prob else 0.0
              for _ in parts[1:]]
    return join_speech(parts, pauses)


@torch.no_grad()
def encode_stream(mimi: MimiModel, pcm: np.ndarray) -> np.ndarray:
    """Codes [K, frames] as the engine's streaming encoder produces them (whole frames only)."""
    frames = len(pcm) // FRAME_SIZE
    device = next(mimi.parameters()).device
    with mimi.streaming(1):
        codes = mimi.encode(torch.from_numpy(pcm[:frames * FRAME_SIZE]).to(device)[None, None])
    return codes[0].cpu().numpy().astype(np.int16)


def source_frame_count(samples: int, convention: StreamConvention) -> int:
    """Input frames the engine steps for `samples` of audio: a partial last frame is padded or dropped."""
    return -(-samples // FRAME_SIZE) if convention.pad_last_frame else samples // FRAME_SIZE


def source_stream(mimi: MimiModel, source: np.ndarray, n_frames: int, convention: StreamConvention) -> np.ndarray:
    """Codes [K, n_frames] the engine feeds the LM for `source`: its frames, the input-EOS frame,
    then Mimi-encoded silence. Under hibiki-zero's convention the encoder reads a frame of
    silence where the EOS code goes; under moshi's it skips that frame."""
    frames = source_frame_count(len(source), convention)
    silence_read = n_frames if convention.encode_eos_frame else n_frames - 1
    pcm = np.zeros(silence_read * FRAME_SIZE, dtype=np.float32)
    kept = source[:frames * FRAME_SIZE]
    pcm[:len(kept)] = kept
    codes = encode_stream(mimi, pcm)
    eos = np.full((codes.shape[0], 1), mimi.cardinality, dtype=codes.dtype)
    after = frames + 1 if convention.encode_eos_frame else frames
    return np.concatenate([codes[:, :frames], eos, codes[:, after:]], axis=1)


def build_example(source: np.ndarray, sentences: list[Sentence], *, mimi: MimiModel, tokenizer: SentencePieceProcessor,
                  tts: TTS, voice: Voice, rng: np.random.Generator, config: AlignmentConfig, max_frames: int,
                  convention: StreamConvention) -> dict:
    speeches = [speak_sentence(tts, s.translation, voice, rng, config) if s.target_audio is None
                else provided_speech(s.target_audio, s.translation) for s in sentences]
    spans = [Span(s.start, s.end) for s in sentences]
    starts = place_targets(spans, [sp.duration for sp in speeches], rng, config)
    source_frames = source_frame_count(len(source), convention)
    target_end = max(start + sp.duration for start, sp in zip(starts, speeches))
    words = [Word(w.text, w.start + start, w.end + start) for start, speech in zip(starts, speeches) for w in speech.words]
    # Text EOS after the input EOS frame and the target speech's tail; later if fast speech
    # pushed tokens past it. The example ends with the EOS frame.
    eos_frame = max(source_frames + 1, int(np.ceil((target_end + config.tail_s) / FRAME_PERIOD_S)))
    text = text_stream(words, eos_frame + sum(len(tokenizer.encode(w.text)) for w in words) + 2, tokenizer, min_eos_frame=eos_frame)
    n_frames = int(np.flatnonzero(text == EOS)[0]) + 1
    if n_frames > max_frames:
        raise ExampleError("too_long", f"{n_frames * FRAME_PERIOD_S:.1f} s once aligned; the limit is {max_frames * FRAME_PERIOD_S:.1f} s")

    canvas = np.zeros(n_frames * FRAME_SIZE, dtype=np.float32)
    for start, speech in zip(starts, speeches):
        at = round(start * SAMPLE_RATE)
        canvas[at:at + len(speech.pcm)] += speech.pcm[:len(canvas) - at]
    target_codes = encode_stream(mimi, canvas)

    source_codes = source_stream(mimi, source, n_frames, convention)
    return {
        "n_frames": n_frames,
        "source_end_frame": source_frames,
        "text_tokens": text[:n_frames].astype(np.int32),
        "target_codes": target_codes,
        "source_codes": source_codes,
        "target_text": " ".join(s.translation for s in sentences),
        "source_text": " ".join(s.text for s in sentences if s.text),
        "sentences": [{"source_start": s.start, "source_end": s.end, "target_start": round(start, 3),
                       "target_end": round(start + sp.duration, 3), "translation": s.translation, "text": s.text}
                      for s, start, sp in zip(sentences, starts, speeches)],
    }
