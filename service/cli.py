"""`hibiki serve`: the streaming translate service (registered in the `hibiki` CLI as a plugin)."""

from __future__ import annotations

import logging
import os
from typing import Annotated, Optional

import torch
import typer
import uvicorn

from hibiki.cli_common import DeviceOption, ModelOption, open_model
from hibiki.engine import BatchedTranslator, Sampling
from service.app import create_app
from service.config import ServiceConfig

logger = logging.getLogger("hibiki")


def serve(
    model: ModelOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (Kyutai's servers use 8998).")] = 8998,
    slots: Annotated[int, typer.Option(help="Concurrent sessions: the model's batch size.")] = 8,
    device: DeviceOption = "auto",
    threads: Annotated[int, typer.Option(help="CPU threads for torch (0: torch's default). On a small CPU machine "
                                              "shared with other work, 1 gives steadier step times.")] = 0,
    api_key: Annotated[Optional[str], typer.Option(
        envvar="HIBIKI_API_KEY", help="Require this key (header kyutai-api-key, Authorization: Bearer, or ?auth_id=).")] = None,
    max_session: Annotated[float, typer.Option(help="Seconds of input audio per session.")] = 3600.0,
    idle_timeout: Annotated[float, typer.Option(help="Close a session silent for this many seconds.")] = 30.0,
    max_message_bytes: Annotated[int, typer.Option(help="Largest websocket message accepted.")] = 1 << 20,
    max_upload_mb: Annotated[int, typer.Option(help="Largest upload to POST /v1/translate, in MiB.")] = 64,
    max_tail: Annotated[float, typer.Option(help="Seconds generated past a session's end when the model never ends its text.")] = 10.0,
    greedy: Annotated[bool, typer.Option(help="Argmax instead of sampling.")] = False,
    cfg_coef: Annotated[Optional[float], typer.Option(help="Voice-transfer guidance (checkpoints with a conditioner).")] = None,
) -> None:
    """Serve streaming translation: web page at /, Kyutai's /api/chat, /v1/stream, POST /v1/translate, /metrics."""
    if threads > 0:
        torch.set_num_threads(threads)
    checkpoint = open_model(model, device)
    try:
        sampling = Sampling.from_checkpoint(checkpoint, cfg_coef=cfg_coef, use_sampling=False if greedy else None)
        translator = BatchedTranslator(checkpoint, slots=slots, sampling=sampling, max_tail_s=max_tail)
    except ValueError as exc:
        logger.error("%s", exc)
        raise typer.Exit(2) from exc
    config = ServiceConfig(api_key=api_key or None, max_message_bytes=max_message_bytes, max_session_s=max_session,
                           idle_timeout_s=idle_timeout, max_upload_bytes=max_upload_mb << 20)
    logger.info("serving %s on http://%s:%d with %d slots on %s%s", checkpoint.source, host, port, slots,
                translator.device, " (API key required)" if config.api_key else "")
    # uvicorn's own cap sits above ours, so a too-big message gets our error message, not a bare close.
    uvicorn.run(create_app(translator, config), host=host, port=port, ws_max_size=4 * max_message_bytes,
                log_level=os.environ.get("HIBIKI_LOG_LEVEL", "info").lower())
