"""Kyutai's published configs (reduced: same keys, smaller sizes) through the user-facing commands:
`hibiki info`, `hibiki translate`, `hibiki serve` and `hibiki eval`, as subprocesses."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import numpy as np
import pytest
import sphn
import torch
from conftest import HIBIKI_CLI, frames
from test_service import TIMEOUT, opus_pages, ready_state
from websockets.asyncio.client import connect

from hibiki.audio import FRAME_SIZE, SAMPLE_RATE, write_wav
from hibiki.checkpoint import load_checkpoint
from hibiki.presets import KYUTAI_REPOS, kyutai_config
from training.loss import LossWeights, loss_parts

# What each reduced checkpoint must say of itself: its family's convention and conditioner.
FAMILY = {"hibiki-1b": ("moshi", True), "hibiki-2b": ("moshi", True), "hibiki-2b-dev": ("moshi", True),
          "hibiki-zero-3b": ("hibiki-zero", False), "hibiki-zero-3b-null-fuser": ("hibiki-zero", False)}


def hibiki(*args, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([*HIBIKI_CLI, *map(str, args)], capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return result


@pytest.mark.parametrize("preset", sorted(KYUTAI_REPOS))
def test_info_and_translate(kyutai_dirs, preset, tmp_path):
    directory = kyutai_dirs[preset]
    written = json.loads((directory / "config.json").read_text())
    assert set(written) - set(kyutai_config(preset)) == {"mimi_config_name"}  # the reduced Mimi's config
    assert set(kyutai_config(preset)) <= set(written)
    described = json.loads(hibiki("info", directory, "--json").stdout)
    assert (described["stream_convention"], described["voice_transfer_conditioner"]) == FAMILY[preset]
    assert described["text_vocabulary"] == described["tokenizer_pieces"] == kyutai_config(preset)["text_card"]
    assert described["delays"] == kyutai_config(preset)["delays"]

    wav = tmp_path / "in.wav"
    write_wav(wav, frames(10, seed=6))
    cfg = ["--cfg-coef", "3"] if FAMILY[preset][1] else []
    dtype = "bf16" if preset.startswith("hibiki-zero-3b") else "fp32"
    done = hibiki("translate", wav, "--model", directory, "--out", tmp_path / "out", "--greedy", "--max-tail", "0.4",
                  "--dtype", dtype, *cfg)
    assert "translated 1 file(s)" in done.stdout
    assert (tmp_path / "out" / "in.wav").stat().st_size > 10 * FRAME_SIZE * 2


@pytest.mark.parametrize("preset", ["hibiki-zero-3b", "hibiki-zero-3b-null-fuser"])
def test_guidance_on_zero_is_a_clear_error(kyutai_dirs, preset, tmp_path):
    wav = tmp_path / "in.wav"
    write_wav(wav, frames(3, seed=6))
    done = hibiki("translate", wav, "--model", kyutai_dirs[preset], "--out", tmp_path / "out", "--cfg-coef", "3",
                  check=False)
    assert done.returncode == 2
    assert "cfg_coef=3 needs a checkpoint with a voice-transfer conditioner" in done.stderr
    assert "only cfg_coef=1 is accepted" in done.stderr


def test_bad_dtype_is_a_clear_error(kyutai_dirs, tmp_path):
    done = hibiki("translate", tmp_path / "x.wav", "--model", kyutai_dirs["hibiki-1b"], "--out", tmp_path,
                  "--dtype", "int8", check=False)
    assert done.returncode == 2 and "unknown dtype 'int8'; accepted: auto, bf16, fp16, fp32" in done.stderr


async def kyutai_chat(address: str, pcm: np.ndarray) -> np.ndarray:
    """Kyutai's protocol as its web clients speak it: handshake, Opus pages in, Opus pages back."""
    reader, received = sphn.OpusStreamReader(SAMPLE_RATE), []
    async with connect(f"ws://{address}/api/chat", open_timeout=TIMEOUT) as ws:
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == b"\x00"
        for page in opus_pages(pcm):
            await ws.send(b"\x01" + page)
        deadline = time.monotonic() + TIMEOUT
        while sum(map(len, received)) < 8 * FRAME_SIZE and time.monotonic() < deadline:
            message = await asyncio.wait_for(ws.recv(), TIMEOUT)
            if message[:1] == b"\x01":
                received.append(reader.append_bytes(message[1:]))
    return np.concatenate(received)


@pytest.mark.parametrize("preset,options", [("hibiki-zero-3b", []), ("hibiki-1b", ["--cfg-coef", "3"])])
def test_serve(kyutai_dirs, preset, options):
    with subprocess.Popen([*HIBIKI_CLI, "serve", "--model", str(kyutai_dirs[preset]), "--port", "0", "--slots", "2",
                           *options], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        try:
            address = None
            for line in proc.stdout:
                assert "Traceback" not in line
                if "Uvicorn running on http://" in line:
                    address = line.split("http://")[1].split()[0]
                    break
            assert address, "the server never said where it listens"
            assert ready_state(address)["slots_total"] == 2
            pcm = asyncio.run(kyutai_chat(address, frames(20, seed=7)))
            assert len(pcm) >= 8 * FRAME_SIZE and np.isfinite(pcm).all() and np.abs(pcm).max() > 0
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.mark.parametrize("preset,options", [("hibiki-zero-3b", ["--dtype", "bf16"]), ("hibiki-2b", ["--cfg-coef", "3"])])
def test_eval(kyutai_dirs, preset, options, tmp_path):
    done = hibiki("eval", "--model", kyutai_dirs[preset], "--limit", 1, "--out", tmp_path / "run", "--max-tail", 0.4,
                  "--asr-model", "none", "--no-speaker-sim", "--greedy", *options)
    assert "1 utterance(s) scored (1 translated now, 0 skipped)" in done.stdout
    run = json.loads((tmp_path / "run" / "summary.json").read_text())["run"]
    assert run["sampling"]["cfg_coef"] == (3.0 if "--cfg-coef" in options else 1.0)


@pytest.mark.parametrize("preset", sorted(KYUTAI_REPOS))
def test_training_loss_on_every_family(kyutai_dirs, preset):
    """The supervised loss (what fine-tuning a Kyutai base runs) gets the conditions moshi's
    forward asserts on: none without a fuser, {} for Zero's empty set, the voice label for 1B/2B."""
    checkpoint = load_checkpoint(kyutai_dirs[preset])
    lm = checkpoint.lm.train()
    text = torch.randint(0, lm.text_card, (2, 1, 12))
    codes = torch.cat([text, torch.randint(0, lm.card, (2, lm.n_q, 12))], dim=1)
    parts = loss_parts(lm(codes, checkpoint.conditions(len(codes))), lm, codes, LossWeights())
    loss = parts.text_sum / parts.text_weight + parts.audio_sum / parts.audio_weight
    loss.backward()
    assert torch.isfinite(loss) and lm.text_linear.weight.grad is not None
