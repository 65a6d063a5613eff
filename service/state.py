"""What every route of one service instance shares."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from hibiki.engine import BatchedTranslator
from service.config import ServiceConfig
from service.metrics import Metrics
from service.scheduler import Scheduler


@dataclass
class ServiceState:
    translator: BatchedTranslator
    scheduler: Scheduler
    metrics: Metrics
    config: ServiceConfig
    # Set when the process is asked to stop (SIGTERM): no new sessions; live ones are told
    # and get their translation so far; files in progress may finish (service.cli drains).
    draining: asyncio.Event = field(default_factory=asyncio.Event)
