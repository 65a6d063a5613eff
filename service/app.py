"""The FastAPI application: every session of every protocol shares one batched model."""

from __future__ import annotations

from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from fastapi import FastAPI, WebSocket
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from hibiki.engine import BatchedTranslator
from service import file_api, stream_v1
from service.auth import redact_keys_in_logs
from service.config import ServiceConfig
from service.kyutai_chat import KyutaiChat
from service.metrics import Metrics
from service.scheduler import Scheduler
from service.state import ServiceState
from service.stream_v1 import StreamV1

STATIC = Path(__file__).parent / "static"

DESCRIPTION = f"""Simultaneous speech-to-speech translation (Kyutai Hibiki design), many sessions in one model batch.

* `GET /` — a web page: microphone in, translated speech and live text out.
* `WS /api/chat` — Kyutai's protocol, unchanged (kind byte + payload: 0x00 handshake,
  0x01 Ogg/Opus audio, 0x02 text, 0x05 error).
* `WS /v1/stream` — Hibiki's protocol:

```
{stream_v1.__doc__.split(chr(10), 2)[2]}
```
* `POST /v1/translate` — a whole recording.

Authentication (when the server has an API key): header `kyutai-api-key`, `Authorization:
Bearer`, or query parameter `auth_id`. When every slot is busy a session waits up to the
server's `--queue-timeout` (default: a quarter second), then is refused (websocket error
`no_free_slot` + close code 1013, HTTP 503 with Retry-After). While the server shuts down,
newcomers are refused (`shutdown`, 1013) and live sessions get their `final` so far, then
an error `shutdown` and close code 1012. Sessions sending no audio for `--idle-timeout`
seconds are closed (`idle`, 1008); pings do not count.
"""


def package_version() -> str:
    try:
        return version("hibiki")
    except PackageNotFoundError:
        return "0"


def create_app(translator: BatchedTranslator, config: ServiceConfig | None = None) -> FastAPI:
    config = config or ServiceConfig()
    redact_keys_in_logs()
    metrics = Metrics()
    service = ServiceState(translator, Scheduler(translator, metrics), metrics, config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await service.scheduler.start()
        yield
        await service.scheduler.stop()

    app = FastAPI(title="Hibiki", version=package_version(), description=DESCRIPTION, lifespan=lifespan)
    app.state.service = service
    app.include_router(file_api.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.websocket("/api/chat")
    async def kyutai_chat(ws: WebSocket) -> None:
        await KyutaiChat(ws, service).run()

    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket) -> None:
        await StreamV1(ws, service).run()

    @app.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: the model is loaded and its clock is ticking")
    async def readyz() -> JSONResponse:
        scheduler = service.scheduler
        ready = scheduler.running and not service.draining.is_set()  # a draining replica takes no newcomers
        body = {"ready": ready, "slots_total": scheduler.capacity, "slots_active": scheduler.active,
                "queued": scheduler.queued, "draining": service.draining.is_set(),
                "ticks": scheduler.ticks, "device": str(translator.device)}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    return app
