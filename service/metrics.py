"""Prometheus metrics of one service instance (its own registry, so several apps can share a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.slots_total = Gauge("hibiki_slots_total", "Slots in the model batch.", registry=r)
        self.slots_active = Gauge("hibiki_slots_active", "Sessions holding a slot.", registry=r)
        self.queued = Gauge("hibiki_sessions_queued", "Sessions waiting for a slot (--queue-timeout).", registry=r)
        self.step_seconds = Histogram(
            "hibiki_step_seconds", "Wall time of one batched model step (80 ms of audio for every active slot).",
            buckets=(0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.4, 0.8, 1.6), registry=r)
        self.frames_in = Counter("hibiki_input_frames", "80 ms input frames received.", registry=r)
        self.frames_out = Counter("hibiki_output_frames", "80 ms output frames produced.", registry=r)
        self.late_ticks = Counter("hibiki_late_ticks", "Batched steps that took longer than the 80 ms of audio they produce.", registry=r)
        self.sessions = Counter("hibiki_sessions", "Sessions admitted.", ["protocol"], registry=r)
        self.refused = Counter("hibiki_sessions_refused", "Sessions refused.", ["reason"], registry=r)
        self.errors = Counter("hibiki_session_errors", "Sessions ended by an error.", ["kind"], registry=r)
        self.dropped = Counter("hibiki_messages_dropped", "Client messages ignored (e.g. /api/chat kinds the protocol does not define).",
                               ["reason"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
