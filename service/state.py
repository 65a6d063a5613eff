"""What every route of one service instance shares."""

from __future__ import annotations

from dataclasses import dataclass

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
