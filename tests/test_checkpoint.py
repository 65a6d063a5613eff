"""Checkpoint writer and loader: round trip, moshi interoperability, repo ids, clear errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sentencepiece
import torch
from conftest import HIBIKI_CLI, noise
from moshi.models import loaders
from safetensors.torch import load_file

from hibiki.audio import write_wav
from hibiki.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from hibiki.engine import BatchedTranslator
from hibiki.presets import OWN_PRESETS


def test_round_trip_keeps_every_weight(tiny_dir, tmp_path):
    original = load_checkpoint(tiny_dir)
    saved = save_checkpoint(tmp_path / "copy", original.lm, original.mimi, original.info.tokenizer,
                            original.lm_config, mimi_config=original.info.mimi_config, metadata=original.metadata)
    reloaded = load_checkpoint(saved)
    assert reloaded.info.raw_config == original.info.raw_config  # every key, model_id included
    for before, after in ((original.lm, reloaded.lm), (original.mimi, reloaded.mimi)):
        a, b = before.state_dict(), after.state_dict()
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key
    # The files themselves hold exactly what the writer was given.
    on_disk = load_file(str(saved / "model.safetensors"))
    assert torch.equal(on_disk["text_linear.weight"], original.lm.text_linear.weight)
    assert json.loads((saved / "config.json").read_text())["model_type"] == "hibiki"


def test_moshi_checkpointinfo_loads_our_directory(tiny_dir):
    """moshi's own loader, given the files, builds the same models without our code."""
    config = json.loads((tiny_dir / "config.json").read_text())
    info = loaders.CheckpointInfo.from_hf_repo(
        "unused/repo", moshi_weights=tiny_dir / config["moshi_name"], mimi_weights=tiny_dir / config["mimi_name"],
        tokenizer=tiny_dir / config["tokenizer_name"], config_path=tiny_dir / "config.json",
        mimi_config_path=tiny_dir / config["mimi_config_name"])
    lm = info.get_moshi(device="cpu", dtype=torch.float32)
    mimi = info.get_mimi(device="cpu")
    ours = load_checkpoint(tiny_dir)
    assert info.model_type == "hibiki"
    assert lm.delays == ours.lm.delays and lm.dep_q == ours.lm.dep_q
    assert torch.equal(lm.transformer.layers[0].self_attn.in_projs[0].weight,
                       ours.lm.transformer.layers[0].self_attn.in_projs[0].weight)
    assert mimi.num_codebooks == max(lm.dep_q, lm.n_q - lm.dep_q)


def _publish_to_hub_cache(directory: Path, cache: Path, repo_id: str) -> None:
    """Lays a checkpoint out as huggingface_hub's cache holds a downloaded repo."""
    commit = "0" * 40
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(directory, repo / "snapshots" / commit)


def test_repo_id_loads_from_hub_cache_in_hibiki_and_moshi(eos_dir, tmp_path):
    """A repo id goes through huggingface_hub (offline, from its cache), here and in moshi's CLI."""
    cache = tmp_path / "hub"
    _publish_to_hub_cache(eos_dir, cache, "kyutai-test/hibiki-tiny")
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(cache))
    info = subprocess.run([*HIBIKI_CLI, "info", "kyutai-test/hibiki-tiny", "--json"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert info.returncode == 0, info.stderr
    described = json.loads(info.stdout)
    assert described["delays"] == OWN_PRESETS["tiny"]["lm"]["delays"]
    assert described["model_type"] == "hibiki"

    # moshi's own inference script, on the same repo id: it stops at the text EOS that this
    # checkpoint writes once the input EOS frame has gone in.
    wav = tmp_path / "in.wav"
    write_wav(wav, noise(0.8, seed=3))
    out = tmp_path / "moshi_out.wav"
    moshi = subprocess.run(
        [sys.executable, "-m", "moshi.run_inference", "--hf-repo", "kyutai-test/hibiki-tiny",
         "--device", "cpu", "--batch-size", "1", str(wav), str(out)],
        env=env, capture_output=True, text=True, timeout=300)
    assert moshi.returncode == 0, moshi.stdout[-2000:] + moshi.stderr[-2000:]
    assert out.is_file()


def _copy(directory: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(directory, tmp_path / "ckpt"))


def test_missing_file_is_named(tiny_dir, tmp_path):
    broken = _copy(tiny_dir, tmp_path)
    (broken / "tokenizer.model").unlink()
    with pytest.raises(CheckpointError, match=r"lacks 'tokenizer.model' \(named by 'tokenizer_name'"):
        load_checkpoint(broken)
    (broken / "config.json").unlink()
    with pytest.raises(CheckpointError, match="has no config.json"):
        load_checkpoint(broken)


def test_config_that_does_not_match_weights(tiny_dir, tmp_path):
    broken = _copy(tiny_dir, tmp_path)
    config = json.loads((broken / "config.json").read_text())
    config["dim"] = 96
    (broken / "config.json").write_text(json.dumps(config))
    expected = r"model.safetensors does not match .*shape mismatches .*emb.0.weight \(2049, 96\) vs \(2049, 64\)"
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(broken)
    config["dim"], config["num_layers"] = 64, 3
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="tensors missing from the file, e.g. .*transformer.layers.2"):
        load_checkpoint(broken)
    config["num_layers"], config["delays"] = 2, [0, 0]
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="does not describe a valid moshi LMModel.*delays"):
        load_checkpoint(broken)
    (broken / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(broken)


def test_tokenizer_smaller_than_text_vocabulary(tiny_dir, tmp_path, caplog):
    """moshi loads such a checkpoint; so does this loader, warning, and shows the uncovered ids as nothing."""
    base = load_checkpoint(tiny_dir)
    pieces = sentencepiece.SentencePieceProcessor(str(base.info.tokenizer)).vocab_size()
    config = dict(base.lm_config, text_card=pieces + 50)
    lm = loaders.get_moshi_lm(None, lm_kwargs=dict(config), device="cpu", dtype=torch.float32)
    saved = save_checkpoint(tmp_path / "big_vocab", lm, base.mimi, base.info.tokenizer, config,
                            mimi_config=base.info.mimi_config)
    translator = BatchedTranslator(load_checkpoint(saved))
    assert re.search(f"tokenizer has {pieces} pieces but .*text_card.* is {pieces + 50}", caplog.text)
    assert translator.piece(pieces + 10) == "" and translator.decode_text([pieces + 10]) == ""
    assert translator.piece(pieces - 1) != ""


def test_unknown_model_reference(tmp_path):
    with pytest.raises(CheckpointError, match="neither a checkpoint directory nor a Hugging Face repo id"):
        load_checkpoint(tmp_path / "does-not-exist")
    with pytest.raises(CheckpointError, match="no local directory 'kyutai/not-in-cache', and could not fetch it.*pass the directory"):
        load_checkpoint("kyutai/not-in-cache")


def test_cli_reports_checkpoint_errors_without_traceback(tmp_path):
    run = subprocess.run([*HIBIKI_CLI, "info", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "has no config.json" in run.stderr
    assert "Traceback" not in run.stderr
