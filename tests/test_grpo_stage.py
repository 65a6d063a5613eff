"""The GRPO stage end to end on a tiny supervised checkpoint: rollouts, rewards, updates,
validation BLEU/LAAL, best checkpoint kept in Kyutai's format."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from hibiki.checkpoint import load_checkpoint
from training.alignment import AlignmentConfig
from training.prepare import PrepareConfig, prepare
from training.sft import SFTConfig, Trainer


@pytest.fixture(scope="module")
def data(tiny_dir, parallel_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("grpo") / "data"
    prepare(PrepareConfig(dataset=str(parallel_set), out=str(out), model=str(tiny_dir), limit=2,
                          alignment=AlignmentConfig(min_delay_s=0.8)))
    return out


def grpo(model, data, out, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training.grpo.train", f"model={model}", f"data={data}",
                           f"val_data={data}", f"out={out}", "per_device_train_batch_size=1", "num_generations=3",
                           "eval_every=1", "reward_every_words=2", *overrides], capture_output=True, text=True, timeout=600)


def test_grpo_stage_runs_validates_and_keeps_the_best(tiny_dir, data, tmp_path):
    sft = Trainer(SFTConfig(data=str(data), model=str(tiny_dir), out=str(tmp_path / "sft"), max_steps=60, batch_size=2,
                            lr=3e-3, warmup_steps=5, save_every=60, shuffle_buffer=0)).train()
    out = tmp_path / "grpo"
    run = grpo(sft["checkpoint"], data, out, "max_steps=2", "learning_rate=1e-4")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "GRPO:" in run.stdout
    assert "step 0: {'val_bleu'" in run.stderr  # the start is logged: `best` is judged against it
    history = json.loads((out / "grpo_summary.json").read_text())["history"]
    assert [r["step"] for r in history] == [0, 1, 2]
    assert all("val_bleu" in r and r["val_laal_s"] is not None for r in history)
    assert all(0 <= r["reward"] <= 100 and 0 <= r["clip_fraction"] <= 1 and np.isfinite(r["loss"]) for r in history[1:])
    start, last = load_checkpoint(sft["checkpoint"]).lm.state_dict(), load_checkpoint(out / "last").lm.state_dict()
    assert any(not torch.equal(start[k], last[k]) for k in start)  # the updates moved the policy
    best = json.loads((out / "best.json").read_text())
    assert best == next(r for r in history if r["step"] == best["step"])
    eligible = [r for r in history if r["val_bleu"] >= history[0]["val_bleu"] - 1.0]  # max_bleu_loss
    assert best["step"] == min(eligible, key=lambda r: (r["val_laal_s"], -r["val_bleu"]))["step"]
    assert load_checkpoint(out / "best").lm is not None and load_checkpoint(out / "last").lm is not None


def test_the_start_is_kept_when_no_validation_has_a_latency(eos_dir, data, tmp_path):
    """A model that writes no words has no LAAL anywhere: `best` is then the start, as documented
    (the demo's smoke run stopped at its evaluation for want of it)."""
    run = grpo(eos_dir, data, tmp_path / "grpo", "max_steps=1")
    assert run.returncode == 0, run.stderr[-3000:]
    history = json.loads((tmp_path / "grpo" / "grpo_summary.json").read_text())["history"]
    assert all(r["val_laal_s"] is None for r in history)
    assert json.loads((tmp_path / "grpo" / "best.json").read_text())["step"] == 0
    start, best = load_checkpoint(eos_dir).lm.state_dict(), load_checkpoint(tmp_path / "grpo" / "best").lm.state_dict()
    assert all(torch.equal(start[k], best[k].to(start[k].dtype)) for k in start)
