"""Property-based fuzzing of every parser that reads client bytes: whatever arrives, each returns
its value or raises its documented error (which the service turns into a message), never
anything else. Derandomized, so CI runs the same examples every time."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import frames
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hibiki.audio import AudioError, wav_bytes
from hibiki.sampling import Sampling
from service.file_api import decode_upload
from service.kyutai_chat import split_message
from service.stream_v1 import parse_json, parse_sampling
from service.wire_audio import OpusDecoder, PcmDecoder, WireFormatError
from service.ws_session import ClientError

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                    max_leaves=20)
SAMPLING_KEYS = st.sampled_from(["temp", "top_k", "temp_text", "top_k_text", "greedy", "cfg_coef", "other"])


def _opus_page() -> bytes:
    from test_service import opus_pages

    return b"".join(opus_pages(frames(6, seed=90)))


@FUZZ
@given(st.binary(max_size=64) | st.text(max_size=16))
def test_kind_byte_and_payload(data):
    try:
        kind, payload = split_message(data)
    except ClientError as error:
        assert error.kind == "bad_message"
        return
    assert 0 <= kind < 256 and bytes([kind]) + payload == data


@FUZZ
@given(JSON.map(lambda value: __import__("json").dumps(value)) | st.text(max_size=60)
       | st.integers(1, 5000).map(lambda depth: '{"type": "start", "x": ' + "[" * depth + "]" * depth + "}"))
def test_json_messages(text):
    try:
        message = parse_json(text, '{"type": "end"}')
    except ClientError as error:
        assert error.kind == "bad_message" and error.message
        return
    assert isinstance(message, dict) and isinstance(message["type"], str)


@FUZZ
@given(JSON | st.dictionaries(SAMPLING_KEYS, JSON, max_size=6))
def test_sampling_objects(options):
    try:
        sampling = parse_sampling(options, Sampling(greedy=True))
    except ClientError as error:
        assert error.kind == "bad_message" and error.message
        return
    sampling.check()  # what it returns is usable


@FUZZ
@given(st.binary(max_size=300), st.integers(0, 400), st.binary(max_size=8))
def test_ogg_opus_pages(noise, cut, patch):
    """Random bytes, and real pages cut and patched anywhere."""
    page = _opus_page()
    mutated = page[:cut] + patch + page[cut + len(patch):]
    for payload in (noise, b"OggS" + noise, mutated):
        decoder = OpusDecoder()
        try:
            pcm = decoder.decode(payload)
        except WireFormatError:
            continue
        assert pcm.dtype == np.float32 and pcm.ndim == 1


@FUZZ
@given(st.sampled_from(["pcm16", "f32"]), st.sampled_from([8000, 16000, 24000, 44100, 192000]), st.binary(max_size=400))
def test_pcm_payloads(sample_format, rate, payload):
    decoder = PcmDecoder(sample_format, rate)
    try:
        pcm = decoder.decode(payload)
    except WireFormatError:
        assert len(payload) % (2 if sample_format == "pcm16" else 4)
        return
    assert pcm.dtype == np.float32 and pcm.ndim == 1


@pytest.fixture(scope="module")
def wav() -> bytes:
    return wav_bytes(frames(4, seed=91))


@settings(FUZZ, max_examples=80)
@given(st.binary(max_size=200), st.integers(0, 60), st.binary(min_size=1, max_size=8), st.text(max_size=300))
def test_uploads(wav, noise, at, patch, filename):
    """Random files, WAV headers patched anywhere (rates, sizes, chunk ids), any file name."""
    header_patched = wav[:at] + patch + wav[at + len(patch):]
    for data in (noise, header_patched):
        try:
            pcm = decode_upload(data, filename, max_seconds=60)
        except AudioError as error:
            assert str(error)
            continue
        assert pcm.dtype == np.float32 and pcm.ndim == 1 and np.isfinite(pcm).all()
