"""`hibiki translate` and `hibiki info` as a user runs them, bad inputs included."""

from __future__ import annotations

import math
import subprocess
import wave
from pathlib import Path

import numpy as np
import sphn
from conftest import HIBIKI_CLI, noise

from hibiki.audio import FRAME_SIZE, SAMPLE_RATE, write_wav

SAMPLE = Path(__file__).parent.parent / "samples" / "fr_bonjour.wav"
TAIL_S = 0.4  # 5 frames


def write_int16_wav(path: Path, channels: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels.shape[0])
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes((channels.T * 32767).astype("<i2").tobytes())


def expected_samples(seconds: float) -> int:
    """Input frames (last one padded) plus the bounded tail a random model always runs into."""
    return (math.ceil(round(seconds * SAMPLE_RATE) / FRAME_SIZE) + round(TAIL_S * 12.5)) * FRAME_SIZE


def translate(model: Path, out: Path, *inputs: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*HIBIKI_CLI, "translate", *map(str, inputs), "--out", str(out), "--model", str(model),
         "--greedy", "--max-tail", str(TAIL_S), "--slots", "4"],
        capture_output=True, text=True, timeout=600)


def test_translate_good_and_bad_inputs(tiny_dir, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    stereo = inputs / "stereo_8k.wav"
    t = np.arange(8000 * 1.3) / 8000
    write_int16_wav(stereo, np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.3 * np.sin(2 * np.pi * 330 * t)]), 8000)
    short = inputs / "short.wav"
    write_wav(short, noise(0.01, seed=1))
    empty = inputs / "empty.wav"
    write_int16_wav(empty, np.zeros((1, 0)), 24000)
    not_audio = inputs / "notes.wav"
    not_audio.write_text("this is not audio\n")
    missing = inputs / "missing.wav"

    run = translate(tiny_dir, tmp_path / "out", SAMPLE, stereo, short, empty, not_audio, missing)
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    for bad, reason in ((missing, "no such file"), (not_audio, "cannot decode as audio"), (empty, "no audio samples")):
        assert f"{bad}: {reason}" in run.stderr
    assert "accepted: wav, flac, mp3" in run.stderr
    assert "translated 3 file(s)" in run.stdout and "real-time factor" in run.stdout

    out = tmp_path / "out"
    durations = {SAMPLE.stem: 128010 / 22050, "stereo_8k": 1.3, "short": 0.01}
    for stem, seconds in durations.items():
        pcm, rate = sphn.read(str(out / f"{stem}.wav"))
        assert rate == SAMPLE_RATE and pcm.shape == (1, expected_samples(seconds)), stem
        assert (out / f"{stem}.txt").is_file()
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s}.{e}" for s in durations for e in ("wav", "txt"))


def test_same_stem_inputs_get_distinct_outputs(tiny_dir, tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        write_wav(tmp_path / sub / "talk.wav", noise(0.3, seed=2))
    run = translate(tiny_dir, tmp_path / "out", tmp_path / "a" / "talk.wav", tmp_path / "b" / "talk.wav")
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["talk-2.txt", "talk-2.wav", "talk.txt", "talk.wav"]


def test_info_describes_streams_and_delays(tiny_dir):
    run = subprocess.run([*HIBIKI_CLI, "info", str(tiny_dir)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "text (inner monologue) + 4 generated audio codebooks + 4 source audio codebooks" in run.stdout
    assert "[0, 0, 2, 2, 2, 0, 2, 2, 2]" in run.stdout
