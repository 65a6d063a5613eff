"""The life of one websocket session over the scheduler, whatever the wire protocol.

Protocol classes (Kyutai's `/api/chat`, our `/v1/stream`) say how to greet, how to read
a message and how to write a frame. This base class does the rest the same way for both:
authentication, admission (refused at once when every slot is busy), limits (message size,
session length, idle timeout), the two pumps (client -> scheduler, scheduler -> client),
reporting errors to the client, and freeing the slot whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect

from hibiki.audio import SAMPLE_RATE, AudioError
from hibiki.engine import FrameOutput, NoFreeSlot
from hibiki.sampling import Sampling
from service.auth import auth_hint, is_authorized
from service.scheduler import Session
from service.state import ServiceState
from service.wire_audio import WireFormatError

logger = logging.getLogger("service.session")

# Websocket close codes (RFC 6455 and IANA registry).
NORMAL, UNSUPPORTED_DATA, POLICY, TOO_BIG, INTERNAL, RESTART, TRY_AGAIN_LATER = 1000, 1003, 1008, 1009, 1011, 1012, 1013
SHUTDOWN_MESSAGE = "the server is shutting down"


class ClientError(Exception):
    """Something the client must be told about before its session is closed."""

    def __init__(self, kind: str, message: str, close_code: int = UNSUPPORTED_DATA):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.close_code = close_code


class WebsocketSession(ABC):
    protocol: ClassVar[str]

    def __init__(self, ws: WebSocket, service: ServiceState):
        self.ws = ws
        self.service = service
        self.session: Session | None = None
        self.sampling: Sampling | None = None  # set by `negotiate` for a stream of its own settings
        self.input_samples = 0
        self.output_frames = 0
        self.opened_at = time.monotonic()
        self.last_audio = self.opened_at  # a session holding a slot must keep sending audio

    # ------------------------------------------------------------ protocol hooks
    async def negotiate(self) -> None:
        """Runs before a slot is taken (e.g. reading a start message)."""

    @abstractmethod
    async def greet(self) -> None: ...

    @abstractmethod
    async def on_message(self, data: bytes | str) -> None: ...

    @abstractmethod
    async def on_frame(self, frame: FrameOutput) -> None: ...

    async def on_complete(self) -> None:
        """The translation is complete (input ended and flushed), or cut short by a shutdown."""

    @abstractmethod
    async def send_error(self, error: ClientError) -> None: ...

    # ------------------------------------------------------------ helpers for protocols
    def feed(self, pcm: np.ndarray) -> None:
        assert self.session is not None
        self.last_audio = time.monotonic()
        self.input_samples += len(pcm)
        limit = self.service.config.max_session_s
        if self.input_samples > limit * SAMPLE_RATE:
            raise ClientError("too_long", f"session input exceeds the limit of {limit:g} s of audio", POLICY)
        if len(pcm):
            self.service.scheduler.feed(self.session, pcm)

    def end_input(self) -> None:
        assert self.session is not None
        self.service.scheduler.end_input(self.session)

    async def receive(self) -> bytes | str | None:
        """The next message, None once the client is gone; enforces the idle timeout and size.

        Idle means no audio: pings and other messages do not keep a slot, which only audio
        (or, after the end of input, waiting for the flushed translation) justifies."""
        config = self.service.config
        input_ended = self.session is not None and self.session.input_ended
        timeout = None if input_ended else config.idle_timeout_s - (time.monotonic() - self.last_audio)
        try:
            if timeout is not None and timeout <= 0:
                raise asyncio.TimeoutError
            message = await asyncio.wait_for(self.ws.receive(), timeout)
        except asyncio.TimeoutError:
            raise ClientError("idle", f"no audio for {config.idle_timeout_s:g} s (pings and text messages do not count); "
                                      "session closed", POLICY) from None
        if message["type"] == "websocket.disconnect":
            if message.get("code") == TOO_BIG:  # past uvicorn's own cap (4x ours): closed before we saw it
                raise ClientError("too_big", f"a message exceeded uvicorn's cap of {config.ws_max_size} bytes "
                                             f"(the limit is {config.max_message_bytes})", TOO_BIG)
            return None
        data = message.get("bytes")
        if data is None:
            data = message.get("text") or ""
        if len(data) > config.max_message_bytes:
            raise ClientError("too_big", f"message of {len(data)} bytes exceeds the limit of {config.max_message_bytes} bytes",
                              TOO_BIG)
        return data

    # ------------------------------------------------------------ the session
    async def run(self) -> None:
        service = self.service
        await self.ws.accept()
        outcome = "client_left"
        try:
            if not is_authorized(service.config.api_key, self.ws.headers, self.ws.query_params):
                service.metrics.refused.labels("unauthorized").inc()
                raise ClientError("unauthorized", f"missing or wrong API key: {auth_hint()}", POLICY)
            if service.draining.is_set():
                service.metrics.refused.labels("shutdown").inc()
                raise ClientError("shutdown", f"{SHUTDOWN_MESSAGE}; connect again (to another replica)", TRY_AGAIN_LATER)
            await self.negotiate()
            try:
                self.session = await service.scheduler.open(self.sampling, service.config.queue_timeout_s)
            except ValueError as exc:
                raise ClientError("bad_message", str(exc)) from None
            except NoFreeSlot as exc:
                raise ClientError("no_free_slot", f"no free slot: {exc}; retry in {service.config.retry_after_s} s",
                                  TRY_AGAIN_LATER) from None
            service.metrics.sessions.labels(self.protocol).inc()
            self._log("open", client=f"{self.ws.client.host}:{self.ws.client.port}" if self.ws.client else "?")
            await self.greet()
            if await self._pump():
                outcome = "complete"
                await self.ws.close(NORMAL)
        except ClientError as error:
            outcome = error.kind
            if self.session is not None or error.kind not in ("unauthorized", "no_free_slot", "shutdown"):  # else a refusal
                service.metrics.errors.labels(error.kind).inc()
            with contextlib.suppress(Exception):  # the client may already be gone
                if error.kind == "shutdown" and self.session is not None:
                    await self.on_complete()  # the translation so far
                await self.send_error(error)
                await self.ws.close(error.close_code, error.message[:120])
        except WebSocketDisconnect:
            pass
        except Exception as exc:  # a bug: tell the client, keep serving the others
            outcome = "internal_error"
            logger.exception("session failed")
            service.metrics.errors.labels("internal").inc()
            with contextlib.suppress(Exception):
                await self.send_error(ClientError("internal", f"internal error: {type(exc).__name__}", INTERNAL))
                await self.ws.close(INTERNAL)
        finally:
            if self.session is not None:
                service.scheduler.close(self.session)
            self._log("closed", outcome=outcome, input_s=round(self.input_samples / SAMPLE_RATE, 2),
                      output_frames=self.output_frames, duration_s=round(time.monotonic() - self.opened_at, 2))

    async def _pump(self) -> bool:
        """Client -> scheduler and scheduler -> client until one side ends; True if the translation completed."""
        reader = asyncio.create_task(self._read_loop())
        writer = asyncio.create_task(self._write_loop())
        shutdown = asyncio.create_task(self.service.draining.wait())
        done, pending = await asyncio.wait({reader, writer, shutdown}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done - {shutdown}:
            task.result()  # re-raises a ClientError from the reader
        if writer in done:
            return True
        if shutdown in done:
            raise ClientError("shutdown", f"{SHUTDOWN_MESSAGE}; this session ends here, its translation so far "
                                          "was sent", RESTART)
        return False

    async def _read_loop(self) -> None:
        while (data := await self.receive()) is not None:
            try:
                await self.on_message(data)
            except (WireFormatError, AudioError) as exc:
                raise ClientError("bad_audio", str(exc), UNSUPPORTED_DATA) from None

    async def _write_loop(self) -> None:
        assert self.session is not None
        while (frame := await self.session.outputs.get()) is not None:
            self.output_frames += 1
            await self.on_frame(frame)
        await self.on_complete()

    def _log(self, event: str, **fields: object) -> None:
        """One key=value line per event, so session logs can be grepped and parsed."""
        session_id = self.session.id if self.session else "-"
        details = " ".join(f"{k}={v}" for k, v in fields.items())
        logger.info("session=%s protocol=%s event=%s %s", session_id, self.protocol, event, details)
