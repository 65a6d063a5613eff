"""Hostile and careless clients against a real `hibiki serve`: one row per probe, then the
server log's tracebacks and the slots still held.

    python bench/service_probes.py [--model DIR] [--slots 4]

Starts the server itself (idle timeout 2 s, so the probe of silent sockets is short), runs
every probe, sends SIGTERM during a live session, and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import io
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import wave

import numpy as np
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

KEY = "pr0be-key"
ROWS: list[tuple[str, str]] = []


def wav(samples: int, rate: int = 24000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(max(rate, 1))
        out.writeframes((np.random.default_rng(0).standard_normal(samples) * 3000).astype("<i2").tobytes())
    data = bytearray(buffer.getvalue())
    data[24:28] = rate.to_bytes(4, "little")
    return bytes(data)


def post(address: str, filename: str, data: bytes, key: bool = True, timeout: float = 120) -> tuple[int, str]:
    boundary = "probe"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n\r\n').encode() \
        + data + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    if key:
        headers["kyutai-api-key"] = KEY
    request = urllib.request.Request(f"http://{address}/v1/translate", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(200).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(300).decode(errors="replace")


def ready(address: str) -> dict:
    with urllib.request.urlopen(f"http://{address}/readyz", timeout=10) as response:
        return json.loads(response.read())


async def v1_error(address: str, start: str) -> str:
    async with connect(f"ws://{address}/v1/stream?auth_id={KEY}", max_size=None) as ws:
        await ws.send(start)
        try:
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if message["type"] == "error":
                    return f"{message['kind']}: {message['message'][:90]}"
        except ConnectionClosed as exc:
            return f"closed {exc.rcvd.code if exc.rcvd else '?'}"


async def kyutai(address: str, messages: list[bytes], read_for: float = 3.0) -> str:
    async with connect(f"ws://{address}/api/chat?auth_id={KEY}", max_size=None) as ws:
        first = await ws.recv()
        for message in messages:
            await ws.send(message)
        kinds = set()
        try:
            deadline = time.monotonic() + read_for
            while time.monotonic() < deadline:
                message = await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
                kinds.add(message[0])
                if message[0] == 0x05:
                    return f"0x05 {message[1:100].decode()}"
        except asyncio.TimeoutError:
            pass
        except ConnectionClosed as exc:
            return f"closed {exc.rcvd.code if exc.rcvd else '?'} {exc.rcvd.reason if exc.rcvd else ''}"[:120]
        return f"handshake {first!r}, kept serving (kinds {sorted(kinds)})"


async def pinger(address: str) -> str:
    async with connect(f"ws://{address}/api/chat?auth_id={KEY}") as ws:
        await ws.recv()
        started = time.monotonic()
        try:
            for _ in range(20):
                await ws.send(b"\x06")
                try:
                    message = await asyncio.wait_for(ws.recv(), 0.5)
                    if message[:1] == b"\x05":
                        return f"after {time.monotonic() - started:.1f} s: 0x05 {message[1:90].decode()}"
                except asyncio.TimeoutError:
                    pass
        except ConnectionClosed as exc:
            return f"closed {exc.rcvd.code if exc.rcvd else '?'} after {time.monotonic() - started:.1f} s"
        return "still open after 10 s of pings"


def opus(seconds: float) -> list[bytes]:
    import sphn

    writer = sphn.OpusStreamWriter(24000)
    pcm = (np.random.default_rng(1).standard_normal(round(seconds / 0.08) * 1920) * 0.1).astype(np.float32)
    return [b"\x01" + p for p in (writer.append_pcm(c) for c in pcm.reshape(-1, 1920)) if p]


def row(probe: str, outcome: str) -> None:
    ROWS.append((probe, outcome))
    print(f"{probe}: {outcome}", file=sys.stderr)


async def probes(address: str) -> None:
    row("start message nested 200 000 deep", await v1_error(address, '{"type": "start", "sampling": ' + "[" * 200000 + "]" * 200000 + "}"))
    row("sampling temp NaN", await v1_error(address, '{"type": "start", "sampling": {"temp": NaN}}'))
    row("sampling temp_text Infinity", await v1_error(address, '{"type": "start", "sampling": {"temp_text": Infinity}}'))
    row("WAV header, sample rate 0", "%d %s" % await asyncio.to_thread(post, address, "a.wav", wav(4000, 0)))
    for name in (".", "..", "/", "a\0b.wav", "x" * 300):
        row(f"upload named {name[:12]!r}", str((await asyncio.to_thread(post, address, name, wav(24000)))[0]))
    before = ready(address)
    row("10 KB WAV claiming 1 Hz", "%d %s" % await asyncio.to_thread(post, address, "slow.wav", wav(5000, 1)))
    row("unknown kind byte on /api/chat", await kyutai(address, [b"\x09junk", *opus(1.0)], read_for=1.5))
    row("message over 4x --max-message-bytes", await kyutai(address, [b"\x01OggS" + bytes(5 << 20)]))
    row("pings only, every 0.5 s (idle 2 s)", await pinger(address))
    refused = 0
    for _ in range(50):  # leave and come back at once
        ws = await connect(f"ws://{address}/api/chat?auth_id={KEY}")
        refused += (await ws.recv())[:1] != b"\x00"
        await ws.close()
    row("reconnect at once after leaving, 50 times", f"{refused} refused")
    started = time.monotonic()
    while ready(address)["slots_active"] and time.monotonic() - started < 5:
        await asyncio.sleep(0.01)
    row("slots held after the probes", f"{ready(address)['slots_active']} (before: {before['slots_active']}; "
                                       f"all free {time.monotonic() - started:.2f} s after the last client left)")


def leave_mid_file(address: str) -> str:
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    data = wav(24000 * 20)
    boundary = "probe"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n').encode() + data \
        + f"\r\n--{boundary}--\r\n".encode()
    connection.request("POST", "/v1/translate", body, {"Content-Type": f"multipart/form-data; boundary={boundary}",
                                                       "kyutai-api-key": KEY})
    while ready(address)["slots_active"] == 0:
        time.sleep(0.01)
    connection.sock.shutdown(socket.SHUT_RDWR)
    connection.close()
    left = time.monotonic()
    while ready(address)["slots_active"]:
        time.sleep(0.01)
    return f"slot free {time.monotonic() - left:.2f} s after the client left (20 s file)"


def unbounded_bodies(address: str) -> list[tuple[str, str]]:
    out = []
    for label, path, length in (("200 MiB upload declared, key sent", f"/v1/translate?auth_id={KEY}", 200 << 20),
                                ("30 MiB upload without a key", "/v1/translate", 30 << 20)):
        with socket.create_connection(tuple(address.rsplit(":", 1))) as sock:
            started = time.monotonic()
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                         f"Content-Length: {length}\r\n\r\n".encode())
            status = sock.recv(100).split(b"\r\n")[0].decode()
            out.append((label, f"{status} after {time.monotonic() - started:.2f} s, body never sent"))
    return out


async def sigterm(address: str, proc: subprocess.Popen) -> str:
    async with connect(f"ws://{address}/v1/stream?auth_id={KEY}") as ws:
        await ws.send('{"type": "start"}')
        await ws.recv()
        pcm = (np.random.default_rng(2).standard_normal(24000 * 2) * 3000).astype("<i2")
        for i in range(20):
            await ws.send(pcm[i * 1920:(i + 1) * 1920].tobytes())
            await asyncio.sleep(0.08)
        proc.send_signal(signal.SIGTERM)
        got = []
        try:
            while True:
                message = await asyncio.wait_for(ws.recv(), 30)
                if isinstance(message, str) and json.loads(message)["type"] in ("final", "error"):
                    got.append(json.loads(message)["type"] + (":" + json.loads(message).get("kind", "") if "error" in message else ""))
        except ConnectionClosed as exc:
            got.append(f"close {exc.rcvd.code if exc.rcvd else '?'}")
    return ", ".join(got)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="Checkpoint directory (default: the embedded model).")
    parser.add_argument("--slots", type=int, default=4)
    args = parser.parse_args()
    command = [sys.executable, "-m", "hibiki.cli", "serve", "--port", "0", "--slots", str(args.slots), "--api-key", KEY,
               "--idle-timeout", "2", "--max-message-bytes", str(1 << 20), "--greedy", "--max-tail", "1"]
    if args.model:
        command += ["--model", args.model]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = []
    for line in proc.stdout:
        log.append(line)
        if "Uvicorn running on http://" in line:
            address = line.split("http://")[1].split()[0]
            break
    asyncio.run(probes(address))
    row("client leaves during /v1/translate", leave_mid_file(address))
    for label, outcome in unbounded_bodies(address):
        row(label, outcome)
    row("SIGTERM during a live /v1/stream session", asyncio.run(sigterm(address, proc)))
    log += proc.communicate(timeout=60)[0].splitlines(keepends=True)
    text = "".join(log)
    row("server exit code after SIGTERM", str(proc.returncode))
    row("tracebacks / Rust panics in the server log", f"{text.count('Traceback')} / {text.count('panicked')}")
    row(f"key {KEY!r} in the server log", str(len(re.findall(re.escape(KEY), text))) + " times")
    print("| probe | outcome |\n|---|---|")
    for probe, outcome in ROWS:
        print(f"| {probe} | {outcome.replace('|', '/')} |")


if __name__ == "__main__":
    main()
