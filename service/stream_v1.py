"""`/v1/stream`: Hibiki's own streaming protocol (documented in the OpenAPI description).

Text messages are JSON; binary messages are audio in the formats chosen at start.

client -> server
  {"type": "start", "input_format": "pcm16"|"f32"|"opus", "sample_rate": 24000,
   "output_format": "pcm16"|"f32"|"opus"|"none",
   "sampling": {"temp", "top_k", "temp_text", "top_k_text", "greedy", "cfg_coef"}}
                                                        first message, required; every field optional
                                                        (sampling: this session's own; cfg_coef, the
                                                        voice-transfer strength, is the server's)
  binary audio                                          any length, any pace
  {"type": "end"}                                       end of input: flush the translation
server -> client
  {"type": "ready", "session": id, "sample_rate": 24000, "frame_size": 1920,
   "output_format": ..., "output_lag_frames": n}        once a slot is taken
  binary audio, one 80 ms frame per message (Opus: Ogg pages as they fill)
  {"type": "text", "text": " word", "frame": i, "time": s}  each text piece, model time
  {"type": "final", "text": ..., "words": [{"text", "start", "end"}], "timing": {...}}
  {"type": "error", "kind": ..., "message": ...}        then the socket closes
Output frame i covers [i * 80 ms, (i + 1) * 80 ms) of the input's timeline; it is produced
when input frame i + output_lag_frames has been received.
"""

from __future__ import annotations

import dataclasses
import json
import time
import typing

from hibiki.audio import FRAME_PERIOD_S, FRAME_SIZE, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, SAMPLE_RATE
from hibiki.engine import FrameOutput
from hibiki.sampling import Sampling
from service.results import translation_summary
from service.wire_audio import INPUT_FORMATS, OUTPUT_FORMATS, Encoder, make_decoder
from service.ws_session import ClientError, WebsocketSession

START_EXAMPLE = '{"type": "start", "input_format": "pcm16", "sample_rate": 24000, "output_format": "pcm16"}'


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(data: bytes | str, expected: str) -> dict:
    """A client's JSON message; ClientError for anything else (NaN and Infinity included:
    strict JSON has no such numbers, and a NaN temperature would poison sampling)."""
    if isinstance(data, bytes):
        raise ClientError("bad_message", f"expected a JSON text message ({expected}), got {len(data)} binary bytes")
    try:
        message = json.loads(data, parse_constant=_no_constant)
    except RecursionError:
        raise ClientError("bad_message", f"JSON nested too deeply; expected {expected}") from None
    except ValueError as exc:  # json.JSONDecodeError is one
        raise ClientError("bad_message", f"invalid JSON ({exc}); expected {expected}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ClientError("bad_message", f"expected a JSON object with a 'type', such as {expected}")
    return message


def _is_a(kind: type, value: object) -> bool:
    """Whether a JSON value stands for a `kind` field: numbers are not booleans, an integer
    field takes integral numbers, and a float field numbers a float can hold."""
    if kind is bool or isinstance(value, bool):
        return kind is bool and isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    return isinstance(value, float) or (isinstance(value, int) and abs(value) < 2 ** 53)


def parse_sampling(options: object, base: Sampling) -> Sampling:
    """A start message's `sampling` object over the server's settings; ClientError for anything
    but an object of `Sampling`'s fields with values it accepts."""
    accepted = typing.get_type_hints(Sampling)
    if not isinstance(options, dict) or set(options) - set(accepted):
        raise ClientError("bad_message", f"sampling must be an object with some of {sorted(accepted)}")
    for key, value in options.items():
        kind = accepted[key]
        if not _is_a(kind, value):
            raise ClientError("bad_message", f"sampling.{key} must be a{'n' if kind is int else ''} {kind.__name__}, got {value!r}"[:300])
    # The object describes how this session samples; numbers it leaves out are the server's.
    sampling = dataclasses.replace(base, **{"greedy": False, **{k: accepted[k](v) for k, v in options.items()}})
    try:
        sampling.check()
    except ValueError as exc:
        raise ClientError("bad_message", str(exc)) from None
    return sampling


class StreamV1(WebsocketSession):
    protocol = "v1"

    async def negotiate(self) -> None:
        data = await self.receive()
        if data is None:
            raise ClientError("client_left", "the client left before starting")
        start = parse_json(data, START_EXAMPLE)
        if start["type"] != "start":
            raise ClientError("bad_message", f"the first message must be a start message, e.g. {START_EXAMPLE}")
        unknown = set(start) - {"type", "input_format", "sample_rate", "output_format", "sampling"}
        if unknown:
            raise ClientError("bad_message", f"unknown start fields {sorted(unknown)}; accepted: "
                                             "input_format, sample_rate, output_format, sampling")
        if "sampling" in start:
            self.sampling = parse_sampling(start["sampling"], self.service.translator.sampling)
        input_format = start.get("input_format", "pcm16")
        output_format = start.get("output_format", "pcm16")
        sample_rate = start.get("sample_rate", SAMPLE_RATE)
        if input_format not in INPUT_FORMATS:
            raise ClientError("bad_message", f"input_format {input_format!r} is not one of {list(INPUT_FORMATS)}")
        if output_format not in OUTPUT_FORMATS:
            raise ClientError("bad_message", f"output_format {output_format!r} is not one of {list(OUTPUT_FORMATS)}")
        if not isinstance(sample_rate, int) or not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
            raise ClientError("bad_message", f"sample_rate {sample_rate!r} must be an integer from {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} "
                                             "(Opus input is always decoded at 24000)")
        self.decoder = make_decoder(input_format, sample_rate)
        self.encoder = Encoder(output_format)
        self.text_tokens: list[int] = []
        self.ended_at: float | None = None

    async def greet(self) -> None:
        assert self.session is not None
        await self.ws.send_json({
            "type": "ready", "session": self.session.id, "sample_rate": SAMPLE_RATE, "frame_size": FRAME_SIZE,
            "output_format": self.encoder.format, "output_lag_frames": self.service.translator.output_lag_frames,
        })

    async def on_message(self, data: bytes | str) -> None:
        if isinstance(data, bytes):
            if self.ended_at is not None:
                raise ClientError("bad_message", "audio after the end message")
            self.feed(self.decoder.decode(data))
            return
        message = parse_json(data, '{"type": "end"}')
        if message["type"] != "end":
            raise ClientError("bad_message", f"unknown message type {message['type']!r}; accepted: 'end'")
        if self.ended_at is None:
            self.feed(self.decoder.flush())
            self.end_input()
            self.ended_at = time.monotonic()

    async def on_frame(self, frame: FrameOutput) -> None:
        self.text_tokens.append(frame.text_token)
        payload = self.encoder.encode(frame.pcm)
        if payload:
            await self.ws.send_bytes(payload)
        if frame.text:
            await self.ws.send_json({"type": "text", "text": frame.text, "frame": frame.index,
                                     "time": round(frame.index * FRAME_PERIOD_S, 3)})

    async def on_complete(self) -> None:
        summary = translation_summary(self.service.translator, self.text_tokens, self.input_samples)
        if self.ended_at is not None:
            summary["timing"]["flush_wall_s"] = round(time.monotonic() - self.ended_at, 3)
        await self.ws.send_json({"type": "final", **summary})

    async def send_error(self, error: ClientError) -> None:
        await self.ws.send_json({"type": "error", "kind": error.kind, "message": error.message})
