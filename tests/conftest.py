"""Shared fixtures: tiny random checkpoints in Kyutai's format, built once per test session."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

# Never reach for the hub from tests; must be set before huggingface_hub is imported.
os.environ["HF_HUB_OFFLINE"] = "1"

from hibiki.audio import FRAME_SIZE, SAMPLE_RATE  # noqa: E402
from hibiki.checkpoint import load_checkpoint  # noqa: E402
from hibiki.random_checkpoint import build_random_checkpoint  # noqa: E402

HIBIKI_CLI = [sys.executable, "-m", "hibiki.cli"]


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    return build_random_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", "tiny", seed=1)


@pytest.fixture(scope="session")
def kyutai_dirs(tmp_path_factory) -> dict[str, Path]:
    """Every Kyutai config (`hibiki.presets.KYUTAI_REPOS`), reduced, random weights: preset -> directory."""
    from hibiki.presets import KYUTAI_REPOS

    root = tmp_path_factory.mktemp("kyutai")
    return {preset: build_random_checkpoint(root / preset, preset, seed=11, reduced=True) for preset in KYUTAI_REPOS}


@pytest.fixture()
def tiny(tiny_dir):
    """A freshly loaded tiny checkpoint (tests may modify its weights)."""
    return load_checkpoint(tiny_dir)


def noise(seconds: float, seed: int) -> np.ndarray:
    """Deterministic speech-level noise at 24 kHz."""
    return (np.random.default_rng(seed).standard_normal(round(seconds * SAMPLE_RATE)) * 0.1).astype(np.float32)


def frames(n: int, seed: int) -> np.ndarray:
    return noise(n * FRAME_SIZE / SAMPLE_RATE, seed)


@pytest.fixture(scope="session")
def eos_dir(tiny_dir, tmp_path_factory) -> Path:
    """The tiny checkpoint with a text bias that makes text EOS the argmax at every step.

    Lets tests observe the end-of-stream logic: EOS before the input ends must be ignored,
    EOS after the input EOS frame must end the stream.
    """
    import copy

    import torch
    from moshi.models import loaders

    from hibiki.checkpoint import save_checkpoint

    base = load_checkpoint(tiny_dir)
    config = dict(copy.deepcopy(base.lm_config), bias_proj=True)
    torch.manual_seed(2)
    lm = loaders.get_moshi_lm(None, lm_kwargs=copy.deepcopy(config), device="cpu", dtype=torch.float32)
    with torch.no_grad():
        lm.text_linear.bias.zero_()
        lm.text_linear.bias[base.tokenizer.eos_id()] = 1e4
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "eos", lm, base.mimi, base.info.tokenizer,
                           config, mimi_config=base.info.mimi_config, metadata=base.metadata)


@contextlib.contextmanager
def live_server(app) -> Iterator[str]:
    """Runs `app` under a real uvicorn on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws_max_size=app.state.service.config.ws_max_size))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(600):
            if server.started:
                break
            time.sleep(0.05)
        assert server.started, "uvicorn did not start within 30 s"
        yield f"{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def stream_through(translator, pcm: np.ndarray) -> list:
    """One whole stream through a translator, beside whatever else it serves: its FrameOutputs."""
    slot = translator.attach()
    translator.feed(slot, pcm)
    translator.end_input(slot)
    outputs = []
    while slot in translator.active_slots:
        outputs += [o for o in translator.step() if o.slot == slot]
    return outputs


def service_app(checkpoint_dir, slots: int = 8, pipeline: bool = False, **config):
    """The service over a greedy translator whose tail stops after 0.4 s (5 frames)."""
    from hibiki.engine import BatchedTranslator
    from hibiki.sampling import Sampling
    from service.app import create_app
    from service.config import ServiceConfig

    translator = BatchedTranslator(load_checkpoint(checkpoint_dir), slots=slots, sampling=Sampling(greedy=True),
                                   max_tail_s=0.4, pipeline=pipeline)
    return create_app(translator, ServiceConfig(**config))


@pytest.fixture(scope="session")
def parallel_set(tmp_path_factory) -> Path:
    """A sentence-level French->English speech set in the data pipeline's input format:
    espeak-ng French with each sentence's span, English translations (from the shipped
    evaluation pairs)."""
    import json

    from hibiki.audio import write_wav
    from training.tts import Espeak, Voice, speak_sentences

    root = tmp_path_factory.mktemp("parallel")
    (root / "audio").mkdir()
    pairs = Path(__file__).parent.parent / "eval" / "data" / "fr_en_mini" / "pairs.jsonl"
    tts, rows = Espeak(), []
    for line in pairs.read_text().splitlines():
        item = json.loads(line)
        speech, spans = speak_sentences(tts, item["source"], Voice("fr", item["voice"]["variant"]), pause_s=0.5)
        write_wav(root / "audio" / f"{item['id']}.wav", speech.pcm)
        rows.append({"id": item["id"], "audio": f"audio/{item['id']}.wav", "sentences": [
            {"start": a, "end": b, "text": src, "translation": tgt}
            for (a, b), src, tgt in zip(spans, item["source"], item["reference"])]})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return root
