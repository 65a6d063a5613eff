"""Kyutai's websocket protocol at `/api/chat`, unchanged, so Kyutai's clients and web UIs work.

Every message is binary: one kind byte, then its payload. The server sends 0x00 once a slot
is ready; then audio flows both ways as 0x01 + Ogg/Opus pages (24 kHz mono), the server
sends the inner-monologue text as 0x02 + UTF-8 pieces, and errors as 0x05 + UTF-8 message
before closing. The protocol has no end of input: the session ends when the client leaves.
Messages of other kinds are dropped, as Kyutai's server drops them (counted in
`hibiki_messages_dropped_total`); pings (0x06) are not audio, so they do not keep an idle
session's slot.
"""

from __future__ import annotations

from hibiki.engine import FrameOutput
from service.wire_audio import Encoder, OpusDecoder
from service.ws_session import ClientError, WebsocketSession

HANDSHAKE, AUDIO, TEXT, ERROR, PING = 0x00, 0x01, 0x02, 0x05, 0x06


def split_message(data: bytes | str) -> tuple[int, bytes]:
    """A client message as (kind byte, payload); ClientError for what the protocol cannot carry."""
    if isinstance(data, str):
        raise ClientError("bad_message", "text websocket messages are not part of this protocol: send binary "
                                         "messages, a kind byte then its payload (0x01 + Ogg/Opus pages)")
    if not data:
        raise ClientError("bad_message", "empty message: expected a kind byte then its payload")
    return data[0], bytes(data[1:])


class KyutaiChat(WebsocketSession):
    protocol = "kyutai"

    async def greet(self) -> None:
        self.decoder = OpusDecoder()
        self.encoder = Encoder("opus")
        await self.ws.send_bytes(bytes([HANDSHAKE]))

    async def on_message(self, data: bytes | str) -> None:
        kind, payload = split_message(data)
        if kind == AUDIO:
            self.feed(self.decoder.decode(payload))
        elif kind != PING:
            self.service.metrics.dropped.labels("unknown_kind").inc()

    async def on_frame(self, frame: FrameOutput) -> None:
        pages = self.encoder.encode(frame.pcm)
        if pages:
            await self.ws.send_bytes(bytes([AUDIO]) + pages)
        if frame.text:
            await self.ws.send_bytes(bytes([TEXT]) + frame.text.encode())

    async def send_error(self, error: ClientError) -> None:
        await self.ws.send_bytes(bytes([ERROR]) + error.message.encode())
