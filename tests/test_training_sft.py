"""Supervised stage: a tiny model memorises examples and translates them back through the
streaming engine; two processes (gloo) match one; a killed run resumes where it stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest
import torch

from hibiki.audio import read_audio
from hibiki.checkpoint import load_checkpoint
from hibiki.engine import BatchedTranslator
from hibiki.file_translation import translate_pcms
from training.alignment import AlignmentConfig
from training.prepare import PrepareConfig, prepare
from training.sft import SFTConfig, Trainer

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def two_examples(tiny_dir, parallel_set, tmp_path_factory) -> Path:
    # Target speech starts >= 0.8 s into its source sentence: by then the two sources differ,
    # so the text is decidable from what the model has heard.
    out = tmp_path_factory.mktemp("prepared2")
    prepare(PrepareConfig(dataset=str(parallel_set), out=str(out), model=str(tiny_dir), limit=2,
                          alignment=AlignmentConfig(min_delay_s=0.8)))
    return out


@pytest.fixture(scope="module")
def eight_examples(tiny_dir, parallel_set, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared8")
    prepare(PrepareConfig(dataset=str(parallel_set), out=str(out), model=str(tiny_dir), limit=8, rows_per_part=8))
    return out


def sft_args(data: Path, model: Path, out: Path, **overrides) -> list[str]:
    settings = dict(data=data, model=model, out=out, batch_size=2, log_every=1, shuffle_buffer=0, lr=1e-3, warmup_steps=1)
    settings.update(overrides)
    return [f"{k}={v}" for k, v in settings.items()]


def history(out: Path) -> list[dict]:
    return json.loads((out / "train_summary.json").read_text())["history"]


def test_tiny_model_memorises_and_translates_back(tiny_dir, parallel_set, two_examples, tmp_path):
    config = SFTConfig(data=str(two_examples), model=str(tiny_dir), out=str(tmp_path / "sft"), max_steps=150, batch_size=2,
                       lr=3e-3, warmup_steps=10, save_every=150, shuffle_buffer=0, val_data=str(two_examples), eval_every=150)
    result = Trainer(config).train()
    losses = result["history"]
    assert losses[-1]["text_loss"] < 0.05 * losses[0]["text_loss"]
    assert losses[-1]["audio_loss"] < 0.2 * losses[0]["audio_loss"]
    assert losses[-1]["val_text_loss"] < 0.05 * losses[0]["text_loss"]
    assert (tmp_path / "sft" / "sft").is_dir()  # tensorboard events

    # The saved Kyutai-format checkpoint, through the streaming engine as a user runs it.
    checkpoint = load_checkpoint(result["checkpoint"])
    translator = BatchedTranslator(checkpoint, slots=2, sampling=checkpoint.sampling(greedy=True), max_tail_s=4)
    examples = list(datasets.load_dataset("parquet", data_files=str(two_examples / "*.parquet"), split="train"))
    sources = [(e["target_text"], read_audio(parallel_set / "audio" / f"{e['id']}.wav")) for e in examples]
    for translation in translate_pcms(translator, sources):
        assert translation.text == translation.key


def test_two_processes_match_one(tiny_dir, eight_examples, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    one = tmp_path / "one"
    subprocess.run([sys.executable, "-m", "training.sft", *sft_args(eight_examples, tiny_dir, one, max_steps=3, batch_size=4)],
                   check=True, capture_output=True, env=env, timeout=300)
    two = tmp_path / "two"
    run = subprocess.run([str(BIN / "torchrun"), "--nproc_per_node", "2", "-m", "training.sft",
                          *sft_args(eight_examples, tiny_dir, two, max_steps=3, batch_size=2)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    for a, b in zip(history(one), history(two), strict=True):
        assert a["text_loss"] == pytest.approx(b["text_loss"], abs=2e-3)
        assert a["audio_loss"] == pytest.approx(b["audio_loss"], abs=2e-3)
        assert a["lr"] == b["lr"]


def test_killed_run_resumes_from_last_checkpoint(tiny_dir, eight_examples, tmp_path):
    args = dict(max_steps=8, save_every=2)
    reference = tmp_path / "reference"
    subprocess.run([sys.executable, "-m", "training.sft", *sft_args(eight_examples, tiny_dir, reference, **args)],
                   check=True, capture_output=True, timeout=300)
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "training.sft", *sft_args(eight_examples, tiny_dir, out, **args)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        latest = out / "latest.json"
        if latest.is_file() and json.loads(latest.read_text())["step"] >= 4:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.1)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    resumed_from = json.loads((out / "latest.json").read_text())["step"]
    assert 4 <= resumed_from < 8
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0 and f"resumed from step {resumed_from}" in resumed.stderr
    after = history(out)
    assert after[0]["step"] == resumed_from + 1 and after[-1]["step"] == 8
    expected = {r["step"]: r for r in history(reference)}
    for record in after:
        assert record["text_loss"] == pytest.approx(expected[record["step"]]["text_loss"], abs=1e-4)
    assert load_checkpoint(json.loads((out / "latest.json").read_text())["checkpoint"]).lm is not None


def test_lora_trains_adapters_only_and_saves_merged_weights(tiny_dir, eight_examples, tmp_path):
    base = load_checkpoint(tiny_dir).lm.state_dict()
    config = SFTConfig(data=str(eight_examples), model=str(tiny_dir), out=str(tmp_path / "lora"), max_steps=3, batch_size=2,
                       lr=1e-2, warmup_steps=1, save_every=3, shuffle_buffer=0, lora=True, lora_rank=4)
    trainer = Trainer(config)
    trainable = {n for n, p in trainer.lm.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    result = trainer.train()
    merged = load_checkpoint(result["checkpoint"]).lm.state_dict()
    assert set(merged) == set(base)  # plain Kyutai weights: adapters folded in
    changed = [k for k in base if not torch.equal(base[k], merged[k])]
    assert changed and all(k.endswith("weight") for k in changed)


def test_best_validation_checkpoint_is_recorded_and_outlives_pruning(tiny_dir, eight_examples, tmp_path):
    # A learning rate this large makes the loss blow up after the first steps: the best
    # validation checkpoint is then an early one, which pruning to 1 checkpoint must spare.
    out = tmp_path / "diverging"
    config = SFTConfig(data=str(eight_examples), val_data=str(eight_examples), model=str(tiny_dir), out=str(out), max_steps=6,
                       batch_size=2, lr=1.0, warmup_steps=1, eval_every=1, save_every=1, keep_checkpoints=1, shuffle_buffer=0)
    history = Trainer(config).train()["history"]
    losses = {r["step"]: r["val_text_loss"] for r in history}
    best = json.loads((out / "best.json").read_text())
    assert best["step"] == min(losses, key=losses.get) < 6
    assert best["val_text_loss"] == pytest.approx(losses[best["step"]])
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [f"step-{best['step']:06d}", "step-000006"]
    assert load_checkpoint(best["checkpoint"]).lm is not None


def test_several_prepared_directories_train_as_one(two_examples, eight_examples, tmp_path):
    from training.batches import open_examples

    joined = list(open_examples(f"{two_examples},{eight_examples}", repeat=False))
    alone = [list(open_examples(d, repeat=False)) for d in (two_examples, eight_examples)]
    assert [e["id"] for e in joined] == [e["id"] for part in alone for e in part]
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "missing")):
        open_examples(f"{two_examples},{tmp_path / 'missing'}")
