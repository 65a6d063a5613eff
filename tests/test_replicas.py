"""Past one machine: two `hibiki serve` replicas of 2 slots behind haproxy with the shipped
config (service/deploy/haproxy.cfg). Four sessions are all served, a fifth waits in haproxy's
queue and is refused; a killed replica's sessions end with an error and newcomers go to
the other."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import frames
from test_service import http, start_serve, v1_session
from websockets.exceptions import InvalidStatus

CONFIG = Path(__file__).parent.parent / "service" / "deploy" / "haproxy.cfg"
pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy (apt-get install haproxy; scripts/setup.sh does)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def session(address: str, n_frames: int, seed: int) -> dict:
    """A real-time /v1/stream client through the balancer; haproxy's own refusal as an error."""
    try:
        return await v1_session(address, frames(n_frames, seed=seed), pause_s=0.08)
    except InvalidStatus as exc:
        return {"error": {"kind": f"http_{exc.response.status_code}"}, "final": None}


def slots_active(address: str) -> int:
    return json.loads(http("GET", f"http://{address}/readyz")[2])["slots_active"]


def haproxy_log(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=30)[0]


def test_two_replicas_behind_haproxy(tiny_dir):
    replicas = [start_serve(tiny_dir, "--slots", "2", "--greedy") for _ in range(2)]
    balancer = f"127.0.0.1:{free_port()}"
    env = dict(os.environ, HIBIKI_LB_BIND=balancer, HIBIKI_SLOTS="2", HIBIKI_LB_QUEUE="1s",
               HIBIKI_REPLICA_1=replicas[0][1], HIBIKI_REPLICA_2=replicas[1][1])
    haproxy = subprocess.Popen(["haproxy", "-db", "-f", str(CONFIG)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(100):  # the balancer listens
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", int(balancer.rsplit(":", 1)[1]))) == 0:
                    break
            time.sleep(0.1)
        time.sleep(1.0)  # health checks every 0.5 s: both replicas up

        async def full_house():
            served = [asyncio.create_task(session(balancer, 40, seed=100 + i)) for i in range(4)]
            await asyncio.sleep(0.8)
            busy = [slots_active(address) for _, address in replicas]
            fifth = await session(balancer, 5, seed=105)
            return await asyncio.gather(*served), busy, fifth

        served, busy, fifth = asyncio.run(full_house())
        assert all(s["error"] is None and s["final"] is not None for s in served)
        assert busy == [2, 2]  # leastconn and maxconn = slots: two sessions on each
        assert fifth["error"]["kind"] == "http_503"  # queued 1 s in haproxy, then refused

        async def replica_dies():
            doomed = [asyncio.create_task(session(balancer, 60, seed=110 + i)) for i in range(4)]
            await asyncio.sleep(1.0)
            replicas[0][0].send_signal(signal.SIGKILL)
            doomed = await asyncio.gather(*doomed)  # the survivor's two finish; its slots are free again
            after = await asyncio.gather(*(session(balancer, 8, seed=120 + i) for i in range(2)))
            return doomed, after

        doomed, after = asyncio.run(replica_dies())
        cut = [s for s in doomed if s["final"] is None]
        assert len(cut) == 2 and all(s["close_code"] == 1006 for s in cut)  # the connection was lost
        assert sum(s["final"] is not None for s in doomed) == 2  # the other replica's finished
        assert all(s["error"] is None and s["final"] is not None for s in after)  # both on the survivor
        assert "replica1 is DOWN" in haproxy_log(haproxy)
    finally:
        haproxy.kill()
        with contextlib.suppress(ValueError):
            haproxy.communicate(timeout=30)
        for proc, _ in replicas:
            proc.kill()
            proc.communicate(timeout=30)
