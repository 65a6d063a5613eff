"""`POST /v1/translate`: upload a recording, get the translated speech, text and timings back.

The file runs through the same scheduler as live sessions (one slot, input ended at once),
so the scheduler steps it as fast as the batch allows instead of at the 80 ms clock.

Work is bounded before it is done: the key before the body, the declared and the streamed
body size before it is held, the header's sample rate and duration before decoding. A
client that leaves while its file is translated frees the slot at once.
"""

from __future__ import annotations

import asyncio
import base64
import re
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from hibiki.audio import ACCEPTED, SAMPLE_RATE, AudioError, AudioTooLong, read_audio, wav_bytes
from hibiki.engine import FrameOutput, NoFreeSlot
from service.auth import auth_hint, is_authorized
from service.results import translation_summary
from service.scheduler import Scheduler, Session
from service.state import ServiceState

router = APIRouter()
DISCONNECT_POLL_S = 0.25
MULTIPART_FRAMING = 64 << 10  # bytes a multipart body may hold beyond the file itself
OPENAPI_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary", "description": f"the recording: {ACCEPTED}"}}}}}}}


class _TooLarge(Exception):
    pass


def decode_upload(data: bytes, filename: str, max_seconds: float) -> np.ndarray:
    """The upload's audio, through a temporary file named by us: the client's name only lends
    its extension (a hint for the decoder), so no name can reach the filesystem."""
    suffix = Path(filename).suffix.lower()
    suffix = suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            return read_audio(path, max_seconds=max_seconds)
        except AudioError as exc:  # name the upload, not our temporary path
            raise type(exc)(str(exc).replace(str(path), repr(filename))) from None


async def _limited(stream: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        yield chunk


async def read_upload(request: Request, limit: int) -> tuple[bytes, str]:
    """The multipart `file` field, refused (413) as soon as the body passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + MULTIPART_FRAMING:
        raise HTTPException(413, f"upload of {int(declared)} bytes exceeds the limit of {limit} bytes")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise HTTPException(400, "expected a multipart/form-data body with the recording in field 'file'")
    try:
        form = await MultiPartParser(request.headers, _limited(request.stream(), limit + MULTIPART_FRAMING),
                                     max_files=1, max_fields=8).parse()
    except _TooLarge:
        raise HTTPException(413, f"upload exceeds the limit of {limit} bytes") from None
    except MultiPartException as exc:
        raise HTTPException(400, f"malformed multipart body ({exc}); expected the recording in field 'file'") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise HTTPException(400, "no file in field 'file' of the multipart body")
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise HTTPException(413, f"upload exceeds the limit of {limit} bytes")
        return data, upload.filename or "upload"
    finally:
        await form.close()


async def _collect(session: Session) -> list[FrameOutput]:
    frames = []
    while (frame := await session.outputs.get()) is not None:
        frames.append(frame)
    return frames


async def _until_disconnected(request: Request) -> None:
    while not await request.is_disconnected():
        await asyncio.sleep(DISCONNECT_POLL_S)


async def translate_session(request: Request, scheduler: Scheduler, session: Session, pcm: np.ndarray) -> list[FrameOutput]:
    """The file's frames; frees the slot whatever happens, at once if the client leaves."""
    try:
        scheduler.feed(session, pcm)
        scheduler.end_input(session)
        collect = asyncio.ensure_future(_collect(session))
        watch = asyncio.ensure_future(_until_disconnected(request))
        done, _ = await asyncio.wait({collect, watch}, return_when=asyncio.FIRST_COMPLETED)
        for task in (collect, watch):
            task.cancel()
        if collect not in done:
            raise HTTPException(499, "the client left before its translation was complete")
        return collect.result()
    finally:
        scheduler.close(session)


@router.post("/v1/translate", summary="Translate an uploaded recording", openapi_extra=OPENAPI_BODY, responses={
    400: {"description": "the upload is not decodable audio"}, 401: {"description": "missing or wrong API key"},
    413: {"description": "upload too large or too long"}, 503: {"description": "no free slot (see Retry-After)"}})
async def translate_file(request: Request) -> dict:
    """Multipart field `file`: any audio sphn decodes, any rate. Returns `text`, `words`
    (text-stream times), `timing` and `audio` (base64 WAV, 24 kHz mono PCM16, model time)."""
    service: ServiceState = request.app.state.service
    config = service.config
    if not is_authorized(config.api_key, request.headers, request.query_params):
        service.metrics.refused.labels("unauthorized").inc()
        raise HTTPException(401, f"missing or wrong API key: {auth_hint()}")
    if service.draining.is_set():
        service.metrics.refused.labels("shutdown").inc()
        raise HTTPException(503, "the server is shutting down; send the file again (to another replica)",
                            headers={"Retry-After": str(config.retry_after_s)})
    data, filename = await read_upload(request, config.max_upload_bytes)
    try:
        pcm = await asyncio.to_thread(decode_upload, data, filename, config.max_session_s)
    except AudioTooLong as exc:
        raise HTTPException(413, str(exc)) from None
    except AudioError as exc:  # most name what is accepted already
        raise HTTPException(400, str(exc) if "accepted:" in str(exc) else f"{exc}. Accepted: {ACCEPTED}") from None
    if len(pcm) > config.max_session_s * SAMPLE_RATE:
        raise HTTPException(413, f"audio of {len(pcm) / SAMPLE_RATE:.1f} s exceeds the limit of {config.max_session_s:g} s")
    scheduler = service.scheduler
    try:
        session = await scheduler.open(wait_s=config.queue_timeout_s)
    except NoFreeSlot as exc:
        raise HTTPException(503, f"no free slot: {exc}", headers={"Retry-After": str(config.retry_after_s)}) from None
    service.metrics.sessions.labels("file").inc()
    started = time.monotonic()
    frames = await translate_session(request, scheduler, session, pcm)
    elapsed = time.monotonic() - started
    summary = translation_summary(service.translator, [f.text_token for f in frames], len(pcm))
    summary["timing"]["processing_s"] = round(elapsed, 3)
    summary["timing"]["real_time_factor"] = round(elapsed / max(len(pcm) / SAMPLE_RATE, 1e-9), 4)
    output = np.concatenate([f.pcm for f in frames]) if frames else np.zeros(0, dtype=np.float32)
    summary["audio"] = {"format": "wav", "sample_rate": SAMPLE_RATE, "base64": base64.b64encode(wav_bytes(output)).decode()}
    return summary
