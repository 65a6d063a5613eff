"""Saving and resuming a training run.

    OUT/checkpoints/step-NNNNNN/   Kyutai-format checkpoint (hibiki translate/serve/eval and
                                   moshi load it as is); LoRA adapters merged in
    OUT/state/step-NNNNNN/         accelerate state (weights, optimizer, scheduler, RNG) and
                                   each process's data position
    OUT/latest.json                the newest complete pair, replaced atomically last

A run killed at any moment resumes from `latest.json`: a half-written step directory is
never referenced.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import torch
from moshi.modules.lora import replace_lora_with_linear

from hibiki.checkpoint import Checkpoint, save_checkpoint

LATEST = "latest.json"


def save_kyutai(lm: torch.nn.Module, base: Checkpoint, directory: Path, dtype: torch.dtype | None) -> Path:
    merged = copy.deepcopy(lm).cpu()
    replace_lora_with_linear(merged)  # no-op without adapters
    return save_checkpoint(directory, merged, base.mimi, base.info.tokenizer, base.lm_config,
                           mimi_config=base.info.mimi_config, model_type=base.info.model_type,
                           lm_gen_config=base.info.lm_gen_config, dtype=dtype)


def read_latest(out: Path) -> dict | None:
    path = out / LATEST
    return json.loads(path.read_text()) if path.is_file() else None


def write_latest(out: Path, record: dict) -> None:
    tmp = out / f".{LATEST}.tmp"
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, out / LATEST)


def prune(folder: Path, keep: int) -> None:
    """Keeps the newest `keep` step-* directories."""
    steps = sorted(folder.glob("step-*"))
    for old in steps[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
