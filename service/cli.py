"""`hibiki serve`: the streaming translate service (registered in the `hibiki` CLI as a plugin)."""

from __future__ import annotations

import logging
import os
from typing import Annotated, Optional

import torch
import typer
import uvicorn

from hibiki.cli_common import CfgOption, DeviceOption, DtypeOption, ModelOption, open_model, open_translator
from service.app import create_app
from service.config import ServiceConfig
from service.server import DrainingServer

logger = logging.getLogger("hibiki")


def serve(
    model: ModelOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (Kyutai's servers use 8998).")] = 8998,
    slots: Annotated[int, typer.Option(help="Concurrent sessions: the model's batch size.")] = 8,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
    threads: Annotated[int, typer.Option(help="CPU threads for torch in each engine thread (0: a third of the cores when "
                                              "pipelined, else torch's default).")] = 0,
    pipeline: Annotated[Optional[bool], typer.Option(
        help="Mimi encoder, LM and Mimi decoder each on its own thread, a tick apart (default: on a CPU).")] = None,
    api_key: Annotated[Optional[str], typer.Option(
        envvar="HIBIKI_API_KEY", help="Require this key (header kyutai-api-key, Authorization: Bearer, or ?auth_id=).")] = None,
    max_session: Annotated[float, typer.Option(help="Seconds of input audio per session.")] = 3600.0,
    idle_timeout: Annotated[float, typer.Option(help="Close a session sending no audio this many seconds (pings do not count).")] = 10.0,
    max_message_bytes: Annotated[int, typer.Option(help="Largest websocket message accepted.")] = 1 << 20,
    max_upload_mb: Annotated[int, typer.Option(help="Largest upload to POST /v1/translate, in MiB.")] = 64,
    drain_grace: Annotated[float, typer.Option(
        min=0, help="On SIGTERM: seconds files in progress may take to finish before the process exits.")] = 30.0,
    queue_timeout: Annotated[float, typer.Option(
        min=0, help="Seconds a session may wait for a slot when all are busy, in arrival order (0: refused at once).")] = 0.0,
    max_tail: Annotated[float, typer.Option(help="Seconds generated past a session's end when the model never ends its text.")] = 10.0,
    greedy: Annotated[bool, typer.Option(help="Argmax instead of sampling.")] = False,
    cfg_coef: CfgOption = None,
) -> None:
    """Serve streaming translation: web page at /, Kyutai's /api/chat, /v1/stream, POST /v1/translate, /metrics."""
    checkpoint = open_model(model, device, dtype)
    if pipeline is None:
        pipeline = checkpoint.lm.device.type == "cpu"
    if threads == 0 and pipeline:  # three engine threads, each its own third of the cores
        threads = max(1, (os.cpu_count() or 3) // 3)
    if threads > 0:
        torch.set_num_threads(threads)
    translator = open_translator(checkpoint, slots, max_tail, greedy, pipeline, cfg_coef=cfg_coef)
    config = ServiceConfig(api_key=api_key or None, max_message_bytes=max_message_bytes, max_session_s=max_session,
                           idle_timeout_s=idle_timeout, max_upload_bytes=max_upload_mb << 20, queue_timeout_s=queue_timeout)
    logger.info("serving %s on http://%s:%d with %d slots on %s (%s, %d torch threads%s)%s", checkpoint.source, host,
                port, slots, translator.device, "pipelined" if pipeline else "sequential", torch.get_num_threads(),
                " each" if pipeline else "", " (API key required)" if config.api_key else "")
    app = create_app(translator, config)
    server_config = uvicorn.Config(app, host=host, port=port, ws_max_size=config.ws_max_size,
                                   log_level=os.environ.get("HIBIKI_LOG_LEVEL", "info").lower())
    DrainingServer(server_config, app.state.service, drain_grace).run()
