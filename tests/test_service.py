"""The service as clients use it: real uvicorn on 127.0.0.1, real websocket and HTTP clients."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import wave

import numpy as np
import pytest
import sphn
from conftest import frames, live_server, service_app, stream_through
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from hibiki.audio import FRAME_SIZE, SAMPLE_RATE, pcm16_bytes, wav_bytes

SLOTS = 8
TAIL_FRAMES = 5  # max_tail_s=0.4: the random tiny model never writes text EOS
TIMEOUT = 60


@pytest.fixture(scope="module")
def server(tiny_dir):
    # Pipelined, as `hibiki serve` runs on a CPU; strict_server below runs the sequential engine.
    with live_server(service_app(tiny_dir, pipeline=True, max_message_bytes=64 << 10)) as address:
        yield address


@pytest.fixture(scope="module")
def strict_server(tiny_dir):
    with live_server(service_app(tiny_dir, slots=2, api_key="s3cret", idle_timeout_s=0.5, max_session_s=1.0)) as address:
        yield address


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def multipart(filename: str, data: bytes) -> tuple[bytes, dict]:
    boundary = "hibiki-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def opus_pages(pcm: np.ndarray) -> list[bytes]:
    writer = sphn.OpusStreamWriter(SAMPLE_RATE)
    pages = [writer.append_pcm(chunk) for chunk in pcm.reshape(-1, FRAME_SIZE)]
    return [p for p in pages if p]


async def v1_session(address: str, pcm: np.ndarray, rate: int = SAMPLE_RATE, chunk_s: float = 0.08,
                     pause_s: float = 0.0, output_format: str = "pcm16", query: str = "", **start) -> dict:
    """A /v1/stream client: start, stream, end, collect everything until the server closes."""
    got = {"audio": [], "texts": [], "final": None, "error": None}
    async with connect(f"ws://{address}/v1/stream{query}", open_timeout=TIMEOUT) as ws:
        with contextlib.suppress(ConnectionClosed):  # a refused client may be closed before it starts
            await ws.send(json.dumps({"type": "start", "input_format": "pcm16", "sample_rate": rate,
                                      "output_format": output_format, **start}))
        got["ready"] = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if got["ready"]["type"] != "ready":
            got["error"] = got["ready"]
            await ws.wait_closed()
            return got
        step = max(1, round(chunk_s * rate))
        with contextlib.suppress(ConnectionClosed):  # the server may end the session early (limits)
            for start in range(0, len(pcm), step):
                await ws.send(pcm16_bytes(pcm[start:start + step]))
                await asyncio.sleep(pause_s)
            await ws.send(json.dumps({"type": "end"}))
        try:
            while True:
                message = await asyncio.wait_for(ws.recv(), TIMEOUT)
                if isinstance(message, bytes):
                    got["audio"].append(message)
                    continue
                event = json.loads(message)
                if event["type"] == "text":
                    got["texts"].append(event)
                else:
                    got[event["type"]] = event
        except ConnectionClosed:
            got["close_code"] = ws.close_code
    return got


async def kyutai_error(address: str, messages: list[bytes | str], path: str = "/api/chat") -> tuple[bytes, int]:
    """Sends `messages` after the handshake (if one comes); returns the 0x05 error payload and the close code."""
    async with connect(f"ws://{address}{path}", open_timeout=TIMEOUT) as ws:
        first = await asyncio.wait_for(ws.recv(), TIMEOUT)
        error = first[1:] if first[:1] == b"\x05" else b""
        if first == b"\x00":
            for message in messages:
                await ws.send(message)
        try:
            while True:
                message = await asyncio.wait_for(ws.recv(), TIMEOUT)
                if message[:1] == b"\x05":
                    error = message[1:]
        except ConnectionClosed:
            return error, ws.close_code


def greedy_pieces(directory, pages: list[bytes]) -> list[str]:
    """The text pieces a greedy translator writes for these Opus pages, decoded as the server decodes them."""
    from hibiki.checkpoint import load_checkpoint
    from hibiki.engine import BatchedTranslator
    from hibiki.sampling import Sampling

    reader = sphn.OpusStreamReader(SAMPLE_RATE)
    pcm = np.concatenate([np.asarray(reader.append_bytes(page), dtype=np.float32) for page in pages])
    with BatchedTranslator(load_checkpoint(directory), sampling=Sampling(greedy=True)) as translator:
        return [o.text for o in stream_through(translator, pcm) if o.text]


def test_kyutai_protocol_round_trip(server, tiny_dir):
    pages = opus_pages(frames(30, seed=11))

    async def client():
        reader = sphn.OpusStreamReader(SAMPLE_RATE)
        received, texts = [], []
        async with connect(f"ws://{server}/api/chat", open_timeout=TIMEOUT) as ws:
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == b"\x00"
            for page in pages:
                await ws.send(b"\x01" + page)
                await asyncio.sleep(0.02)
            deadline = time.monotonic() + TIMEOUT
            while sum(map(len, received)) < 10 * FRAME_SIZE and time.monotonic() < deadline:
                message = await asyncio.wait_for(ws.recv(), TIMEOUT)
                kind, payload = message[0], message[1:]
                assert kind in (0x01, 0x02), f"unexpected kind {kind}"
                if kind == 0x01:
                    received.append(reader.append_bytes(payload))
                else:
                    texts.append(payload.decode())
        return np.concatenate(received), texts

    pcm, texts = asyncio.run(client())
    assert len(pcm) >= 10 * FRAME_SIZE and np.isfinite(pcm).all() and np.abs(pcm).max() > 0
    expected = greedy_pieces(tiny_dir, pages)  # the test server is greedy
    assert texts and texts == expected[:len(texts)]


def test_v1_stream_flushes_at_end_of_input_and_resamples(server):
    rate = 16000
    pcm = frames(40, seed=12)[::3]  # 25600 samples: 1.6 s at 16 kHz
    got = asyncio.run(v1_session(server, pcm, rate=rate, chunk_s=0.05))
    assert got["error"] is None and got["close_code"] == 1000
    ready, final = got["ready"], got["final"]
    assert ready["sample_rate"] == SAMPLE_RATE and ready["output_lag_frames"] == 3  # max delay 2, less 1 read ahead, + 2 pipelined
    # 1.6 s of input -> 20 frames at 24 kHz, then the 0.4 s tail
    assert [len(a) for a in got["audio"]] == [FRAME_SIZE * 2] * (20 + TAIL_FRAMES)
    assert final["timing"]["input_s"] == pytest.approx(1.6, abs=0.01)
    assert final["timing"]["output_s"] == pytest.approx((20 + TAIL_FRAMES) * 0.08)
    assert got["texts"] and final["text"] and final["words"]  # the random tiny model writes random pieces
    assert [t["frame"] for t in got["texts"]] == sorted(t["frame"] for t in got["texts"])
    for word in final["words"]:
        assert 0 <= word["start"] < word["end"] <= final["timing"]["output_s"]


def test_eight_concurrent_sessions_all_get_output(server):
    async def clients():
        return await asyncio.gather(*(v1_session(server, frames(8 + i, seed=20 + i), pause_s=0.04) for i in range(SLOTS)))

    for i, got in enumerate(asyncio.run(clients())):
        assert got["error"] is None, got["error"]
        assert len(got["audio"]) == 8 + i + TAIL_FRAMES and got["final"]["timing"]["input_s"] == pytest.approx((8 + i) * 0.08)


def ready_state(address: str) -> dict:
    status, _, body = http("GET", f"http://{address}/readyz")
    assert status == 200
    return json.loads(body)


def wait_for_idle(address: str) -> None:
    for _ in range(200):
        if ready_state(address)["slots_active"] == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"slots still held: {ready_state(address)}")


def test_disconnect_mid_stream_frees_the_slot(server):
    wait_for_idle(server)

    async def leaver():
        async with connect(f"ws://{server}/api/chat", open_timeout=TIMEOUT) as ws:
            assert await ws.recv() == b"\x00"
            for page in opus_pages(frames(20, seed=30)):
                await ws.send(b"\x01" + page)
            await asyncio.wait_for(ws.recv(), TIMEOUT)  # being served
            assert ready_state(server)["slots_active"] == 1
        # leaves without any goodbye

    asyncio.run(leaver())
    wait_for_idle(server)


def test_full_slots_refuse_at_once(server):
    wait_for_idle(server)

    async def scenario():
        holders = [await connect(f"ws://{server}/api/chat", open_timeout=TIMEOUT) for _ in range(SLOTS)]
        try:
            for ws in holders:
                assert await asyncio.wait_for(ws.recv(), TIMEOUT) == b"\x00"
            started = time.monotonic()
            error, code = await kyutai_error(server, [])
            refused_in = time.monotonic() - started
            ws_refusal = await v1_session(server, frames(2, seed=1))
            body, headers = multipart("a.wav", wav_bytes(frames(3, seed=2)))
            http_refusal = await asyncio.to_thread(http, "POST", f"http://{server}/v1/translate", body, headers)
            return error, code, refused_in, ws_refusal, http_refusal
        finally:
            for ws in holders:
                await ws.close()

    error, code, refused_in, ws_refusal, (status, headers, body) = asyncio.run(scenario())
    assert code == 1013 and b"no free slot" in error and refused_in < 5
    assert ws_refusal["error"]["kind"] == "no_free_slot"
    assert status == 503 and headers["retry-after"] == "2" and b"no free slot" in body
    wait_for_idle(server)


@pytest.mark.parametrize("messages, expected, code", [
    ([b"\x01garbage, not an ogg page"], b"does not start with an Ogg page", 1003),
    (["a text frame"], b"text websocket messages are not part of this protocol", 1003),
    ([b"\x01" + b"OggS" + bytes(70 << 10)], b"exceeds the limit of 65536 bytes", 1009),
    ([b"\x01" + opus_pages(frames(4, seed=3))[0], b"\x01OggS" + bytes(300)], b"broken Ogg/Opus stream", 1003),
], ids=["garbage", "text-frame", "oversize", "broken-ogg"])
def test_malformed_input_is_reported_and_others_still_served(server, messages, expected, code):
    async def scenario():
        bystander = asyncio.create_task(v1_session(server, frames(12, seed=40), pause_s=0.04))
        error, close_code = await kyutai_error(server, messages)
        return error, close_code, await bystander

    error, close_code, bystander = asyncio.run(scenario())
    assert expected in error and close_code == code
    assert bystander["error"] is None and len(bystander["audio"]) == 12 + TAIL_FRAMES
    wait_for_idle(server)


def test_a_message_past_uvicorns_cap_closes_with_1009_and_is_counted(server):
    """Past 4x --max-message-bytes uvicorn closes the socket itself (1009, naming its cap); the
    session is logged and counted as too_big, not as a client that left."""
    before = metric(server, 'hibiki_session_errors_total{kind="too_big"}')

    async def client():
        async with connect(f"ws://{server}/api/chat", open_timeout=TIMEOUT, max_size=None) as ws:
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == b"\x00"
            await ws.send(b"\x01OggS" + bytes(300 << 10))
            with contextlib.suppress(ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), TIMEOUT)
            return ws.close_code

    assert asyncio.run(client()) == 1009
    wait_for_idle(server)
    assert metric(server, 'hibiki_session_errors_total{kind="too_big"}') == before + 1


def test_kyutai_unknown_kinds_are_dropped_and_counted(server):
    """Kyutai's server drops message kinds it does not know; so does this one, and counts them."""
    async def client():
        async with connect(f"ws://{server}/api/chat", open_timeout=TIMEOUT) as ws:
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == b"\x00"
            await ws.send(b"\x09hello")
            await ws.send(b"\x06")  # a ping
            for page in opus_pages(frames(20, seed=12)):
                await ws.send(b"\x01" + page)
            audio = 0
            while audio < 3:
                audio += (await asyncio.wait_for(ws.recv(), TIMEOUT))[0] == 0x01
        return audio

    assert asyncio.run(client()) == 3
    status, _, body = http("GET", f"http://{server}/metrics")
    assert status == 200 and 'hibiki_messages_dropped_total{reason="unknown_kind"} 1.0' in body.decode()
    wait_for_idle(server)


def test_v1_sessions_sample_their_own_way(server):
    pcm = frames(10, seed=13)

    async def sessions():
        return await asyncio.gather(
            v1_session(server, pcm), v1_session(server, pcm, sampling={"greedy": True}),
            v1_session(server, pcm, sampling={"temp": 3.0, "temp_text": 3.0, "top_k": 250, "top_k_text": 250}),
            v1_session(server, pcm, sampling={"temp": "hot"}), v1_session(server, pcm, sampling={"cfg_coef": 3.0}),
            v1_session(server, pcm, sampling={"top_k": 0}))

    default, greedy, hot, bad_type, cfg, unlimited = asyncio.run(sessions())
    texts = {name: [(t["frame"], t["text"]) for t in got["texts"]] for name, got in (("default", default),
             ("greedy", greedy), ("hot", hot))}
    assert texts["default"] == texts["greedy"]  # the test server is greedy
    assert len(hot["audio"]) == len(greedy["audio"]) and texts["hot"] != texts["greedy"]
    assert "sampling.temp must be a float" in bad_type["error"]["message"]
    assert "cfg_coef is the batch's setting" in cfg["error"]["message"]
    assert "top_k=0 is beyond this server's limit: from 1 to 250" in unlimited["error"]["message"]


def test_v1_bad_start_and_bad_pcm(server):
    async def scenario():
        results = []
        for start, then in [
            ('{"type": "start", "input_format": "mp3"}', None),
            ("not json", None),
            ('{"type": "start"}', b"\x00\x01\x02"),  # odd byte count for pcm16
            ('{"type": "start", "sampling": ' + "[" * 20000 + "]" * 20000 + "}", None),
            ('{"type": "start", "sampling": {"temp": NaN}}', None),
            ('{"type": "start", "sampling": {"temp_text": 1e999}}', None),
        ]:
            async with connect(f"ws://{server}/v1/stream", open_timeout=TIMEOUT) as ws:
                await ws.send(start)
                if then is not None:
                    assert json.loads(await ws.recv())["type"] == "ready"
                    await ws.send(then)
                try:
                    while True:
                        message = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
                        if message["type"] == "error":
                            results.append(message["message"])
                except ConnectionClosed:
                    pass
        return results

    bad_format, bad_json, odd_bytes, deep, nan, infinite = asyncio.run(scenario())
    assert "input_format 'mp3' is not one of" in bad_format
    assert "invalid JSON" in bad_json
    assert "not a whole number of 2-byte samples" in odd_bytes
    assert "JSON nested too deeply" in deep
    assert "invalid JSON (NaN is not a JSON number)" in nan
    assert "must be finite numbers >= 0" in infinite
    wait_for_idle(server)


def test_file_endpoint(server):
    pcm = frames(15, seed=50)
    body, headers = multipart("talk.wav", wav_bytes(pcm))
    status, _, payload = http("POST", f"http://{server}/v1/translate", body, headers)
    assert status == 200, payload
    result = json.loads(payload)
    with wave.open(io.BytesIO(base64.b64decode(result["audio"]["base64"]))) as audio:
        assert audio.getframerate() == SAMPLE_RATE and audio.getnframes() == (15 + TAIL_FRAMES) * FRAME_SIZE
    assert result["timing"]["input_s"] == pytest.approx(1.2) and result["timing"]["real_time_factor"] > 0
    body, headers = multipart("notes.txt", b"this is not audio")
    status, _, payload = http("POST", f"http://{server}/v1/translate", body, headers)
    assert status == 400 and b"'notes.txt': cannot decode as audio" in payload and b"accepted: wav, flac" in payload.lower()


def wav_header_claiming(rate: int, samples: int) -> bytes:
    """A PCM16 WAV whose header says `rate` (0 makes sphn panic; 1 Hz would resample 24000x)."""
    data = bytearray(wav_bytes(np.zeros(samples, dtype=np.float32)))
    data[24:28] = rate.to_bytes(4, "little")
    data[28:32] = (2 * rate).to_bytes(4, "little")
    return bytes(data)


@pytest.mark.parametrize("filename, data, status, message", [
    ("zero.wav", wav_header_claiming(0, 4000), 400, b"broken audio header"),
    ("slow.wav", wav_header_claiming(1, 5000), 400, b"sample rate 1 Hz; accepted: 8000 to 192000 Hz"),
    ("long.wav", wav_header_claiming(8000, 8000 * 3700), 413, b"exceeds the limit of 3600 s"),
    (".", None, 200, None), ("..", None, 200, None), ("/", None, 200, None), ("a\x00b.wav", None, 200, None),
    ("x" * 300 + ".wav", None, 200, None),
], ids=["rate-0", "rate-1", "header-too-long", "dot", "dotdot", "slash", "nul", "long-name"])
def test_file_endpoint_hostile_uploads(server, filename, data, status, message):
    body, headers = multipart(filename, data if data is not None else wav_bytes(frames(3, seed=51)))
    got, _, payload = http("POST", f"http://{server}/v1/translate", body, headers)
    assert got == status, payload[:300]
    assert message is None or message in payload
    wait_for_idle(server)


def test_file_endpoint_bounds_the_body_before_reading_it(strict_server):
    """Too big by Content-Length, or sent without a key: answered before the body is read."""
    import socket

    def answer(headers: str) -> tuple[bytes, float]:
        with socket.create_connection(tuple(strict_server.rsplit(":", 1)), timeout=TIMEOUT) as sock:
            started = time.monotonic()
            sock.sendall(headers.encode())  # the promised body never comes
            return sock.recv(4096), time.monotonic() - started

    head = "POST /v1/translate{} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: {}\r\n\r\n"
    too_big, _ = answer(head.format("?auth_id=s3cret", 200 << 20))
    assert too_big.startswith(b"HTTP/1.1 413") and b"exceeds the limit" in too_big
    no_key, _ = answer(head.format("", 30 << 20))
    assert no_key.startswith(b"HTTP/1.1 401")


def test_file_client_leaving_frees_its_slot(server):
    """A client that leaves mid-translation frees its slot at once, not when the file is done."""
    import http.client

    wait_for_idle(server)
    seconds = 60
    body, headers = multipart("long.wav", wav_bytes(frames(round(seconds / 0.08), seed=52)))
    before = metric(server, "hibiki_output_frames_total")
    host, port = server.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
    connection.request("POST", "/v1/translate", body, headers)
    for _ in range(400):
        if ready_state(server)["slots_active"] == 1:
            break
        time.sleep(0.01)
    connection.sock.shutdown(2)
    connection.close()
    wait_for_idle(server)
    assert metric(server, "hibiki_output_frames_total") - before < 0.8 * seconds / 0.08


def metric(address: str, name: str) -> float:
    _, _, body = http("GET", f"http://{address}/metrics")
    return next((float(line.split()[-1]) for line in body.decode().splitlines() if line.startswith(name + " ")), 0.0)


def test_auth_and_limits(strict_server):
    pcm = frames(4, seed=60)
    refused = asyncio.run(v1_session(strict_server, pcm))
    assert refused["error"]["kind"] == "unauthorized" and "auth_id" in refused["error"]["message"]
    assert asyncio.run(v1_session(strict_server, pcm, query="?auth_id=wrong"))["error"]["kind"] == "unauthorized"
    served = asyncio.run(v1_session(strict_server, pcm, query="?auth_id=s3cret"))
    assert served["error"] is None and served["final"]["timing"]["input_s"] == pytest.approx(0.32)
    body, headers = multipart("a.wav", wav_bytes(pcm))
    assert http("POST", f"http://{strict_server}/v1/translate", body, headers)[0] == 401
    assert http("POST", f"http://{strict_server}/v1/translate", body, {**headers, "kyutai-api-key": "s3cret"})[0] == 200
    bearer = {**headers, "Authorization": "Bearer s3cret"}
    assert http("POST", f"http://{strict_server}/v1/translate", body, bearer)[0] == 200
    error, code = asyncio.run(kyutai_error(strict_server, [], path="/api/chat?auth_id=s3cret"))  # sends nothing
    assert b"no audio for 0.5 s" in error and code == 1008
    too_long = asyncio.run(v1_session(strict_server, frames(20, seed=61), query="?auth_id=s3cret"))
    assert too_long["error"]["kind"] == "too_long" and "1 s of audio" in too_long["error"]["message"]


def test_operations_endpoints(server):
    assert http("GET", f"http://{server}/healthz")[0] == 200
    assert ready_state(server)["slots_total"] == SLOTS
    status, headers, body = http("GET", f"http://{server}/metrics")
    metrics = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain")
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in metrics.splitlines() if line and line[0] != "#"}
    assert values["hibiki_slots_total"] == SLOTS
    assert values['hibiki_sessions_total{protocol="v1"}'] >= 1
    assert values["hibiki_input_frames_total"] > 0 and values["hibiki_output_frames_total"] > 0
    assert values["hibiki_step_seconds_count"] > 0 and "hibiki_late_ticks_total" in values
    openapi = json.loads(http("GET", f"http://{server}/openapi.json")[2])
    assert "/v1/translate" in openapi["paths"] and "/v1/stream" in openapi["info"]["description"]
    assert b"<html" in http("GET", f"http://{server}/")[2]


def test_hibiki_serve_command(tiny_dir):
    """The real command: it says where it listens, serves, and logs no key sent as a query parameter."""
    key = "k3y-in-the-url"
    proc, address = start_serve(tiny_dir, "--slots", "2", "--api-key", key)
    with proc:
        try:
            assert ready_state(address)["slots_total"] == 2
            served = asyncio.run(v1_session(address, frames(3, seed=70), query=f"?auth_id={key}"))
            assert served["error"] is None and served["final"] is not None
            assert http("GET", f"http://{address}/readyz?auth_id={key}")[0] == 200
        finally:
            proc.terminate()
            log = proc.communicate(timeout=30)[0]
    assert "auth_id=***" in log and key not in log


def test_pings_do_not_hold_a_slot_and_a_left_slot_is_free_at_once(strict_server):
    """strict_server: 2 slots, a 0.5 s idle limit. Pings are not audio: a ping-only session is
    closed as idle. A client that leaves frees its slot for the very next connection."""
    url = f"ws://{strict_server}/api/chat?auth_id=s3cret"

    async def pinger() -> bytes:
        async with connect(url, open_timeout=TIMEOUT) as ws:
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == b"\x00"
            with contextlib.suppress(ConnectionClosed):
                for _ in range(40):  # 2 s of pings, 4x the idle limit
                    await ws.send(b"\x06")
                    await asyncio.sleep(0.05)
                    with contextlib.suppress(asyncio.TimeoutError):
                        message = await asyncio.wait_for(ws.recv(), 0.001)
                        if message[:1] == b"\x05":
                            return message[1:]
            return b""

    async def churn() -> list[bytes]:
        first = await connect(url, open_timeout=TIMEOUT)
        second = await connect(url, open_timeout=TIMEOUT)
        greetings = [await asyncio.wait_for(ws.recv(), TIMEOUT) for ws in (first, second)]
        await second.close()
        third = await connect(url, open_timeout=TIMEOUT)  # at once: no tick has run since
        greetings.append(await asyncio.wait_for(third.recv(), TIMEOUT))
        for ws in (first, third):
            await ws.close()
        return greetings

    assert b"no audio for 0.5 s" in asyncio.run(pinger())
    assert asyncio.run(churn()) == [b"\x00"] * 3
    wait_for_idle(strict_server)


def start_serve(tiny_dir, *args: str) -> tuple[subprocess.Popen, str]:
    """`hibiki serve` in a subprocess on a free port: (process, address)."""
    proc = subprocess.Popen([sys.executable, "-m", "hibiki.cli", "serve", "--model", str(tiny_dir), "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if "Uvicorn running on http://" in line:
            return proc, line.split("http://")[1].split()[0]
    proc.kill()
    raise AssertionError("the server never said where it listens")


def test_sigterm_drains(tiny_dir):
    """SIGTERM: a live session gets its translation so far and an error naming the shutdown; a
    file in progress finishes; a newcomer meanwhile is refused with the reason; then the
    process exits by itself, cleanly."""
    import signal
    import threading

    proc, address = start_serve(tiny_dir, "--slots", "3", "--greedy", "--drain-grace", "120")
    try:
        body, headers = multipart("long.wav", wav_bytes(frames(500, seed=82)))  # 40 s of audio
        upload: dict = {}
        thread = threading.Thread(target=lambda: upload.update(
            answer=http("POST", f"http://{address}/v1/translate", body, headers)))

        async def scenario():
            live = asyncio.create_task(v1_session(address, frames(60, seed=80), pause_s=0.08))  # ~5 s in real time
            thread.start()
            for _ in range(200):
                if ready_state(address)["slots_active"] == 2:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            live = await live
            late = await v1_session(address, frames(3, seed=81))
            return live, late

        live, late = asyncio.run(scenario())
        thread.join(timeout=120)
        assert live["error"]["kind"] == "shutdown" and "shutting down" in live["error"]["message"]
        assert live["final"] is not None and 0 < live["final"]["timing"]["input_s"] < 4.8
        assert late["error"]["kind"] == "shutdown" and "another replica" in late["error"]["message"]
        status, _, payload = upload["answer"]
        assert status == 200 and json.loads(payload)["timing"]["input_s"] == pytest.approx(40.0)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        log = proc.communicate(timeout=30)[0]
    assert "Traceback" not in log and "draining" in log and "drained; stopping" in log
