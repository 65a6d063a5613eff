"""uvicorn's server with a drain: the first SIGTERM (or Ctrl-C) stops admissions and ends live
sessions with a message and their translation so far, lets files in progress finish within
a grace period, and only then lets uvicorn close what is left and exit. A second signal
exits at once."""

from __future__ import annotations

import asyncio
import logging
import time

import uvicorn

from service.state import ServiceState

logger = logging.getLogger("service")
DRAIN_POLL_S = 0.05


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, service: ServiceState, grace_s: float):
        super().__init__(config)
        self.service = service
        self.grace_s = grace_s
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets=None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig, frame) -> None:
        if self._loop is None or self.service.draining.is_set():
            super().handle_exit(sig, frame)
            return
        logger.info("draining: no new sessions; live ones are told, files get up to %g s", self.grace_s)
        self._loop.call_soon_threadsafe(self._loop.create_task, self._drain())

    async def _drain(self) -> None:
        self.service.draining.set()
        deadline = time.monotonic() + self.grace_s
        while self.service.scheduler.active and time.monotonic() < deadline:
            await asyncio.sleep(DRAIN_POLL_S)
        left = self.service.scheduler.active
        logger.info("drained%s; stopping", f" ({left} session(s) cut at the grace period)" if left else "")
        self.should_exit = True
