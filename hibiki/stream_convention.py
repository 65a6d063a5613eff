"""How a model family expects a stream to start and to end, as Kyutai's own inference feeds it.

Kyutai has two inference paths, and they disagree on exactly the frames a model sees:

- moshi's `run_inference` (original Hibiki): the first input frame is stepped twice,
  because LMGen replaces what its first step reads by the initial tokens; only whole frames
  are kept (a partial last frame is dropped); the input-EOS frame is codes only, Mimi's
  encoder never sees it.
- the `hibiki-zero` package (`inference.encode_inputs` and `run.generate`): `max_delay`
  frames of Mimi-encoded silence, encoded apart from the input, lead the stream; the input
  is zero-padded to whole frames; the input-EOS code replaces the frame of padding right
  after the input, which Mimi's encoder has read like the silence that follows.

This project's own models follow moshi's, except that a partial last frame is zero-padded:
training encodes each whole utterance with Mimi, which pads its last frame, so the end of
the speech is in what they learnt from (`moshi-padded`).

A model learnt one of them, so the engine follows the one its checkpoint names in
config.json, as `model_id.stream_convention`: moshi keeps `model_id` aside as traceability
and passes it to no constructor, so the key leaves the checkpoint loadable by moshi's own
tools (a top-level key would reach LMModel's kwargs). Kyutai's configs name none: among them,
the original Hibiki models carry the voice-transfer conditioner and Hibiki-Zero carries
none, which is how the convention is inferred when the key is absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CONFIG_KEY = "stream_convention"


@dataclass(frozen=True)
class StreamConvention:
    name: str
    silence_warmup: bool  # lead with max_delay frames of encoded silence (else: one step whose input is unread)
    pad_last_frame: bool  # zero-pad a partial last input frame (else: drop it)
    encode_eos_frame: bool  # Mimi's encoder reads a frame of zeros where the input-EOS code goes


MOSHI = StreamConvention("moshi", silence_warmup=False, pad_last_frame=False, encode_eos_frame=False)
HIBIKI_ZERO = StreamConvention("hibiki-zero", silence_warmup=True, pad_last_frame=True, encode_eos_frame=True)
MOSHI_PADDED = StreamConvention("moshi-padded", silence_warmup=False, pad_last_frame=True, encode_eos_frame=False)
CONVENTIONS = {c.name: c for c in (MOSHI, HIBIKI_ZERO, MOSHI_PADDED)}


def convention_for(model_id: dict[str, Any], has_voice_conditioner: bool) -> StreamConvention:
    """The convention config.json's `model_id` names, else the one of Kyutai's family with that conditioner."""
    name = model_id.get(CONFIG_KEY)
    if name is None:
        return MOSHI if has_voice_conditioner else HIBIKI_ZERO
    if name not in CONVENTIONS:
        raise ValueError(f"config.json: model_id.{CONFIG_KEY}={name!r} is not one of {sorted(CONVENTIONS)}")
    return CONVENTIONS[name]
