"""Load benchmark of the service: N clients each stream a wav in real time over /v1/stream.

Starts `hibiki serve` in its own process (or targets --address), then for each N runs N
concurrent clients that send one 80 ms PCM16 frame every 80 ms (absolute schedule, no
drift) and time every output frame. Output frame i is produced by input frame
i + output_lag_frames (the server says so at start), so its latency is the time from
sending that input frame to receiving the output frame.

A session is "kept in real time" when it was admitted, received every output frame its
input allows, and its p95 frame latency stays within --budget-ms. Prints one row per N
and the largest N whose sessions were all kept in real time.

    .venv/bin/python bench/service_load.py --clients 1 2 4 8 --slots 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from hibiki.audio import FRAME_PERIOD_S, FRAME_SIZE, SAMPLE_RATE, pcm16_bytes, read_audio

SAMPLE = Path(__file__).parent.parent / "samples" / "fr_bonjour.wav"


@dataclass
class ClientResult:
    admitted: bool = False
    sent_at: list[float] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)
    lag: int = 0
    finished: bool = False

    def latencies(self) -> np.ndarray:
        """Seconds from sending input frame i + lag to receiving output frame i, while input was live."""
        pairs = [(self.received_at[i], self.sent_at[i + self.lag]) for i in range(len(self.received_at))
                 if 0 <= i + self.lag < len(self.sent_at)]
        return np.array([r - s for r, s in pairs])

    def expected_outputs(self) -> int:
        return max(0, len(self.sent_at) - max(self.lag, 0))


async def client(address: str, pcm16: bytes, n_frames: int, start_at: float) -> ClientResult:
    result = ClientResult()
    frame_bytes = FRAME_SIZE * 2
    try:
        async with connect(f"ws://{address}/v1/stream", open_timeout=60, max_size=None) as ws:
            await ws.send(json.dumps({"type": "start", "input_format": "pcm16", "output_format": "pcm16"}))
            ready = json.loads(await ws.recv())
            if ready["type"] != "ready":
                return result
            result.admitted, result.lag = True, ready["output_lag_frames"]

            async def receive() -> None:
                async for message in ws:
                    if isinstance(message, bytes):
                        result.received_at.append(time.perf_counter())
                    elif json.loads(message)["type"] == "final":
                        result.finished = True

            receiver = asyncio.create_task(receive())
            for i in range(n_frames):
                await asyncio.sleep(max(0.0, start_at + i * FRAME_PERIOD_S - time.perf_counter()))
                await ws.send(pcm16[i * frame_bytes:(i + 1) * frame_bytes])
                result.sent_at.append(time.perf_counter())
            await ws.send(json.dumps({"type": "end"}))
            await asyncio.wait_for(receiver, timeout=120)
    except (ConnectionClosed, OSError, asyncio.TimeoutError):
        pass
    return result


def late_ticks(address: str) -> float:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=30) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("hibiki_late_ticks_total"):
                return float(line.split()[1])
    return 0.0


async def run_level(address: str, n: int, pcm16: bytes, seconds: float) -> list[ClientResult]:
    n_frames = round(seconds / FRAME_PERIOD_S)
    start_at = time.perf_counter() + 0.5
    # Clients join 10 ms apart, as real users do not arrive on the same millisecond.
    return await asyncio.gather(*(client(address, pcm16, n_frames, start_at + 0.01 * k) for k in range(n)))


def start_server(args: argparse.Namespace, log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:  # a free port
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "hibiki.cli", "serve", "--port", str(port), "--slots", str(args.slots),
               "--device", args.device, "--threads", str(args.threads)]
    if args.pipeline is not None:
        command.append("--pipeline" if args.pipeline else "--no-pipeline")
    if args.model:
        command += ["--model", args.model]
    proc = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)
    address = f"127.0.0.1:{port}"
    while proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://{address}/readyz", timeout=5):
                return proc, address
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the server did not start (exit code {proc.returncode}); see {log}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4, 8], help="Concurrent clients per level.")
    parser.add_argument("--slots", type=int, default=8, help="Server batch size (when this script starts the server).")
    parser.add_argument("--model", help="Checkpoint for the server (default: the embedded model).")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="Server's torch CPU threads (hibiki serve --threads).")
    parser.add_argument("--pipeline", action=argparse.BooleanOptionalAction,
                        help="Server's engine pipelined or not (hibiki serve --pipeline; default: the server's).")
    parser.add_argument("--address", help="host:port of a running server instead of starting one.")
    parser.add_argument("--wav", type=Path, default=SAMPLE, help="Audio each client streams (looped).")
    parser.add_argument("--seconds", type=float, default=10.0, help="Seconds each client streams.")
    parser.add_argument("--server-log", type=Path, default=Path("out/service_load_server.log"))
    parser.add_argument("--client-nice", type=int, default=0,
                        help="Niceness of this script's clients once the server runs: they stand in for remote "
                             "machines, so a positive value keeps them from preempting the server's CPU threads.")
    parser.add_argument("--budget-ms", type=float, default=250.0, help="p95 frame latency that still counts as real time.")
    parser.add_argument("--json", type=Path, help="Also write the rows here (for bench/gpu_check.py).")
    args = parser.parse_args()
    if not 0 <= args.client_nice <= 19:
        parser.error(f"--client-nice must be from 0 to 19 (it only lowers the clients' priority), got {args.client_nice}")

    pcm = read_audio(args.wav)
    pcm = np.tile(pcm, int(np.ceil(args.seconds * SAMPLE_RATE / len(pcm))) + 1)  # looped to the streaming length
    args.server_log.parent.mkdir(parents=True, exist_ok=True)
    pcm16 = pcm16_bytes(pcm)
    proc, address = (None, args.address) if args.address else start_server(args, args.server_log)
    if args.client_nice:
        os.nice(args.client_nice)  # after the server started: it keeps the default priority
    rows = []
    try:
        print(f"server {address}; each client streams {args.seconds:g} s of {args.wav.name} in real time; "
              f"real time = all output frames, p95 latency <= {args.budget_ms:g} ms; clients at nice {os.nice(0)}")
        print(f"{'clients':>7} {'refused':>7} {'real-time':>9} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'late ticks':>10}")
        asyncio.run(run_level(address, 1, pcm16, 2.0))  # warm-up, not reported: first steps allocate and tune kernels
        for n in args.clients:
            late_before = late_ticks(address)
            results = asyncio.run(run_level(address, n, pcm16, args.seconds))
            late = late_ticks(address) - late_before
            admitted = [r for r in results if r.admitted]
            kept = sum(1 for r in admitted if r.finished and len(r.received_at) >= r.expected_outputs()
                       and r.latencies().size and np.percentile(r.latencies(), 95) * 1000 <= args.budget_ms)
            latencies = np.concatenate([r.latencies() for r in admitted]) * 1000 if admitted else np.zeros(1)
            p50, p95, p99 = np.percentile(latencies, [50, 95, 99]) if latencies.size else (float("nan"),) * 3
            rows.append((n, n - len(admitted), kept, p50, p95, p99, late))
            print(f"{n:>7} {n - len(admitted):>7} {kept:>5}/{len(admitted):<3} {p50:>7.0f} {p95:>7.0f} {p99:>7.0f} {late:>10.0f}",
                  flush=True)
            time.sleep(1.0)  # let flushes finish before the next level
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    held = [n for n, refused, kept, *_ in rows if refused == 0 and kept == n]
    print(f"largest N held in real time: {max(held) if held else 0}")
    if args.json:
        names = ("clients", "refused", "kept", "p50_ms", "p95_ms", "p99_ms", "late_ticks")
        args.json.write_text(json.dumps([dict(zip(names, map(float, row))) for row in rows], indent=1))


if __name__ == "__main__":
    main()
