"""The 80 ms clock over the engine: concurrent sessions, stalls, departures, refusals."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from conftest import frames

from hibiki.audio import FRAME_SIZE
from hibiki.checkpoint import load_checkpoint
from hibiki.engine import BatchedTranslator, NoFreeSlot
from hibiki.sampling import Sampling
from service.scheduler import Scheduler


async def stream(scheduler: Scheduler, pcm: np.ndarray, chunk_frames: int, pause_s: float) -> list:
    """A client: sends `chunk_frames` frames every `pause_s`, ends its input, collects until done."""
    session = await scheduler.open()
    for start in range(0, len(pcm), chunk_frames * FRAME_SIZE):
        scheduler.feed(session, pcm[start:start + chunk_frames * FRAME_SIZE])
        await asyncio.sleep(pause_s)
    scheduler.end_input(session)
    received = []
    while (frame := await asyncio.wait_for(session.outputs.get(), timeout=30)) is not None:
        received.append(frame)
    return received


def test_concurrent_sessions_refusal_and_departure(tiny_dir):
    async def scenario():
        translator = BatchedTranslator(load_checkpoint(tiny_dir), slots=3, sampling=Sampling(greedy=True),
                                       max_tail_s=0.4)
        scheduler = Scheduler(translator)
        await scheduler.start()
        try:
            leaver = await scheduler.open()
            scheduler.feed(leaver, frames(50, seed=1))
            clients = [
                asyncio.create_task(stream(scheduler, frames(10, seed=2), chunk_frames=10, pause_s=0)),  # burst
                asyncio.create_task(stream(scheduler, frames(6, seed=3), chunk_frames=1, pause_s=0.3)),  # stalls
            ]
            await asyncio.sleep(0.01)
            with pytest.raises(NoFreeSlot):
                await scheduler.open()  # refused (after the short grace) while three sessions hold the slots
            await asyncio.wait_for(leaver.outputs.get(), timeout=10)  # the leaver is being served...
            scheduler.close(leaver)  # ...then its client disconnects mid-stream
            burst, stalled = await asyncio.gather(*clients)
            late = await stream(scheduler, frames(4, seed=4), chunk_frames=2, pause_s=0)  # takes a freed slot
            assert scheduler.active == 0 and translator.active_slots == []
            return burst, stalled, late
        finally:
            await scheduler.stop()

    burst, stalled, late = asyncio.run(scenario())
    for received, n_frames in ((burst, 10), (stalled, 6), (late, 4)):
        assert len(received) == n_frames + 5  # input frames + 0.4 s tail of a model that never ends
        assert [f.index for f in received] == list(range(len(received)))
        assert received[-1].final


def test_bad_audio_is_refused_before_the_engine(tiny_dir):
    async def scenario():
        scheduler = Scheduler(BatchedTranslator(load_checkpoint(tiny_dir), slots=1))
        await scheduler.start()
        try:
            session = await scheduler.open()
            with pytest.raises(ValueError, match="NaN"):
                scheduler.feed(session, np.full(FRAME_SIZE, np.nan, dtype=np.float32))
            scheduler.end_input(session)
            with pytest.raises(ValueError, match="after the end of input"):
                scheduler.feed(session, np.zeros(FRAME_SIZE, dtype=np.float32))
            while await asyncio.wait_for(session.outputs.get(), timeout=30) is not None:
                pass
            return scheduler.ticks
        finally:
            await scheduler.stop()

    assert asyncio.run(scenario()) > 0


def test_a_full_batch_queues_in_arrival_order(tiny_dir):
    """With a queue timeout, sessions finding every slot busy wait, first come first served,
    and one that waits too long is refused."""
    async def scenario():
        scheduler = Scheduler(BatchedTranslator(load_checkpoint(tiny_dir), slots=1, max_tail_s=0.4))
        await scheduler.start()
        try:
            holder = await scheduler.open()
            order = []

            async def wait_for_slot(name: str, wait_s: float):
                try:
                    session = await scheduler.open(wait_s=wait_s)
                except NoFreeSlot:
                    order.append(f"{name} refused")
                    return
                order.append(name)
                await asyncio.sleep(0.1)
                scheduler.close(session)

            waiters = [asyncio.create_task(wait_for_slot(name, wait_s)) for name, wait_s in
                       (("first", 5.0), ("second", 5.0), ("impatient", 0.3))]
            await asyncio.sleep(0.05)
            assert scheduler.queued == 3
            await asyncio.sleep(0.5)
            scheduler.close(holder)
            await asyncio.gather(*waiters)
            return order, scheduler.queued
        finally:
            await scheduler.stop()

    assert asyncio.run(scenario()) == (["impatient refused", "first", "second"], 0)
