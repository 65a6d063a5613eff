"""The clock that drives one BatchedTranslator for many concurrent sessions.

Sessions live on the asyncio side (websocket handlers); the engine lives on one worker
thread. Handlers never touch the engine: they queue audio and commands on their session,
and each tick the worker applies the queued commands, steps every slot that has work, and
hands the frames back to the sessions' queues. A session that sends faster than real time
is buffered by the engine; one that stalls simply does not advance, and never holds the
others back.

Ticks come every 80 ms, so live sessions share one batched step per frame. While some
session's input has ended (a file job, or a live session flushing its translation), or a
session has fallen behind, what it needs is already there, so ticks follow each other at
once: as fast as input allows.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from hibiki.audio import FRAME_PERIOD_S, FRAME_SIZE, as_pcm
from hibiki.engine import BatchedTranslator, FrameOutput, NoFreeSlot
from hibiki.sampling import Sampling
from service.metrics import Metrics

logger = logging.getLogger(__name__)

# A session finding every slot busy waits at least this long: a client that has just left
# may not have been noticed yet (its close still in flight), and its slot is the newcomer's.
ADMISSION_GRACE_S = 0.25
ADMISSION_POLL_S = 0.02
# A live session with this many whole frames waiting has fallen behind (a late tick, a burst
# from the network): tick again at once until it has caught up, or its delay would stay.
CATCH_UP_FRAMES = 1


@dataclass
class Session:
    """One client's stream. `outputs` yields FrameOutputs, then None once the stream is complete."""

    id: int
    outputs: asyncio.Queue = field(default_factory=asyncio.Queue)
    slot: int | None = None
    input_ended: bool = False
    sampling: Sampling | None = None  # this stream's own settings (None: the batch's)
    _pending: list = field(default_factory=list)  # ("feed", pcm) | ("end", None), applied on the worker


class Scheduler:
    """Owns the engine: admits sessions, queues their input, ticks the batch."""

    def __init__(self, translator: BatchedTranslator, metrics: Metrics | None = None):
        self.translator = translator
        self.metrics = metrics or Metrics()
        self.metrics.slots_total.set(translator.batch_size)
        self.metrics.slots_active.set_function(lambda: self.active)
        self.metrics.queued.set_function(lambda: self.queued)
        self._lock = threading.Lock()  # guards the session tables, never held while stepping
        self._waiting: list[Session] = []  # admitted, slot not attached yet
        self._running: dict[int, Session] = {}  # slot -> session
        self._closed: list[int] = []  # slots whose client left
        self._queue: list[object] = []  # tickets of sessions waiting for a slot, in arrival order
        self._ids = itertools.count(1)
        self._task: asyncio.Task | None = None
        # Always the same thread: a torch call from a new thread starts another OpenMP team,
        # and a pool rotating over threads oversubscribes the cores (steps took twice as long).
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hibiki-engine")
        self.ticks = 0
        self.late_ticks = 0

    @property
    def capacity(self) -> int:
        return self.translator.batch_size

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def active(self) -> int:
        """Slots held by sessions. A departed client's slot is free at once: the next tick
        detaches it before it attaches the sessions admitted since."""
        with self._lock:
            return len(self._waiting) + len(self._running)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="hibiki-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._worker.shutdown(wait=True)

    @property
    def queued(self) -> int:
        """Sessions waiting for a slot."""
        return len(self._queue)

    async def open(self, sampling: Sampling | None = None, wait_s: float = 0.0) -> Session:
        """Admits a session, in arrival order; when every slot is busy it waits up to `wait_s`
        (at least ADMISSION_GRACE_S) for one, then raises NoFreeSlot.

        Raises ValueError at once if the stream cannot have `sampling` in this batch."""
        if sampling is not None:
            self.translator.check_stream_sampling(sampling)
        deadline = time.monotonic() + max(wait_s, ADMISSION_GRACE_S)
        ticket = object()
        self._queue.append(ticket)
        try:
            while True:
                if self._queue[0] is ticket:
                    with self._lock:
                        if len(self._waiting) + len(self._running) < self.capacity:  # self.active, lock held
                            session = Session(id=next(self._ids), sampling=sampling)
                            self._waiting.append(session)
                            return session
                if time.monotonic() >= deadline:
                    self.metrics.refused.labels("no_free_slot").inc()
                    raise NoFreeSlot(f"all {self.capacity} slots are busy")
                await asyncio.sleep(ADMISSION_POLL_S)
        finally:
            self._queue.remove(ticket)

    def feed(self, session: Session, pcm: np.ndarray) -> None:
        """Queues 24 kHz mono float32 audio; checked here so the engine never sees bad input."""
        if session.input_ended:
            raise ValueError("audio after the end of input")
        pcm = as_pcm(pcm)
        self.metrics.frames_in.inc(pcm.size / FRAME_SIZE)
        with self._lock:
            session._pending.append(("feed", pcm))

    def end_input(self, session: Session) -> None:
        if session.input_ended:
            return
        session.input_ended = True
        with self._lock:
            session._pending.append(("end", None))

    def close(self, session: Session) -> None:
        """The client is gone: its slot is freed at the next tick, its output dropped."""
        with self._lock:
            if session in self._waiting:
                self._waiting.remove(session)
            elif session.slot is not None and self._running.get(session.slot) is session:
                del self._running[session.slot]
                self._closed.append(session.slot)

    async def _run(self) -> None:
        next_tick = time.monotonic()
        while True:
            started = time.monotonic()
            try:
                frames, hurry = await asyncio.get_running_loop().run_in_executor(self._worker, self._tick)
            except Exception:  # a bug must not stop every session: log it and keep the clock going
                logger.exception("scheduler tick failed")
                frames, hurry = [], False
            now = time.monotonic()
            if frames:
                self.metrics.step_seconds.observe(now - started)
            for session, frame in frames:
                if frame is not None:
                    self.metrics.frames_out.inc()
                session.outputs.put_nowait(frame)
            self.ticks += 1
            if frames and now - started > FRAME_PERIOD_S:  # this batch cannot keep up with real time
                self.late_ticks += 1
                self.metrics.late_ticks.inc()
            next_tick += FRAME_PERIOD_S
            if hurry or now > next_tick:  # never sleep to make up for lost time: go on from now
                next_tick = now
            await asyncio.sleep(max(0.0, next_tick - now))

    def _tick(self) -> tuple[list[tuple[Session, FrameOutput | None]], bool]:
        """Runs on the worker thread: apply queued commands, step, route frames.

        Also says whether the next tick should come at once (some session's input has ended)."""
        engine = self.translator
        with self._lock:
            for slot in self._closed:
                engine.detach(slot)
            self._closed.clear()
            while self._waiting:
                session = self._waiting.pop(0)
                session.slot = engine.attach(session.sampling)
                self._running[session.slot] = session
            for session in self._running.values():
                for kind, pcm in session._pending:
                    if kind == "feed":
                        engine.feed(session.slot, pcm)
                    else:
                        engine.end_input(session.slot)
                session._pending.clear()
        frames = engine.step()
        routed: list[tuple[Session, FrameOutput | None]] = []
        with self._lock:
            for frame in frames:
                session = self._running.get(frame.slot)
                if session is None:
                    continue
                routed.append((session, frame))
                if frame.final:
                    del self._running[frame.slot]
                    routed.append((session, None))
            hurry = any(session.input_ended or engine.buffered_frames(slot) >= CATCH_UP_FRAMES
                        for slot, session in self._running.items())
        return routed, hurry
