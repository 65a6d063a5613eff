"""`POST /v1/translate`: upload a recording, get the translated speech, text and timings back.

The file runs through the same scheduler as live sessions (one slot, input ended at once),
so the scheduler steps it as fast as the batch allows instead of at the 80 ms clock.
"""

from __future__ import annotations

import asyncio
import base64
import tempfile
import time
from pathlib import Path

import numpy as np
from fastapi import APIRouter, HTTPException, Request, UploadFile

from hibiki.audio import ACCEPTED, SAMPLE_RATE, AudioError, read_audio, wav_bytes
from hibiki.engine import NoFreeSlot
from service.auth import auth_hint, is_authorized
from service.results import translation_summary
from service.state import ServiceState

router = APIRouter()


def decode_upload(data: bytes, filename: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(filename or "upload").name
        path.write_bytes(data)
        try:
            return read_audio(path)
        except AudioError as exc:  # name the upload, not our temporary path
            raise AudioError(str(exc).replace(str(path), repr(filename))) from None


@router.post("/v1/translate", summary="Translate an uploaded recording", responses={
    400: {"description": "the upload is not decodable audio"}, 401: {"description": "missing or wrong API key"},
    413: {"description": "upload too large or too long"}, 503: {"description": "no free slot (see Retry-After)"}})
async def translate_file(request: Request, file: UploadFile) -> dict:
    """Multipart field `file`: any audio sphn decodes, any rate. Returns `text`, `words`
    (text-stream times), `timing` and `audio` (base64 WAV, 24 kHz mono PCM16, model time)."""
    service: ServiceState = request.app.state.service
    config = service.config
    if not is_authorized(config.api_key, request.headers, request.query_params):
        service.metrics.refused.labels("unauthorized").inc()
        raise HTTPException(401, f"missing or wrong API key: {auth_hint()}")
    data = await file.read(config.max_upload_bytes + 1)
    if len(data) > config.max_upload_bytes:
        raise HTTPException(413, f"upload exceeds the limit of {config.max_upload_bytes} bytes")
    try:
        pcm = await asyncio.to_thread(decode_upload, data, file.filename or "upload")
    except AudioError as exc:
        raise HTTPException(400, f"{exc}. Accepted: {ACCEPTED}") from None
    if len(pcm) > config.max_session_s * SAMPLE_RATE:
        raise HTTPException(413, f"audio of {len(pcm) / SAMPLE_RATE:.1f} s exceeds the limit of {config.max_session_s:g} s")
    scheduler = service.scheduler
    try:
        session = scheduler.open()
    except NoFreeSlot as exc:
        raise HTTPException(503, f"no free slot: {exc}", headers={"Retry-After": str(config.retry_after_s)}) from None
    service.metrics.sessions.labels("file").inc()
    started = time.monotonic()
    frames = []
    try:  # if the client leaves, this coroutine is cancelled and the slot freed below
        scheduler.feed(session, pcm)
        scheduler.end_input(session)
        while (frame := await session.outputs.get()) is not None:
            frames.append(frame)
    finally:
        scheduler.close(session)
    elapsed = time.monotonic() - started
    summary = translation_summary(service.translator, [f.text_token for f in frames], len(pcm))
    summary["timing"]["processing_s"] = round(elapsed, 3)
    summary["timing"]["real_time_factor"] = round(elapsed / max(len(pcm) / SAMPLE_RATE, 1e-9), 4)
    output = np.concatenate([f.pcm for f in frames]) if frames else np.zeros(0, dtype=np.float32)
    summary["audio"] = {"format": "wav", "sample_rate": SAMPLE_RATE, "base64": base64.b64encode(wav_bytes(output)).decode()}
    return summary
