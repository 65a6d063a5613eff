"""Saving and resuming a training run.

    OUT/checkpoints/step-NNNNNN/   Kyutai-format checkpoint (hibiki translate/serve/eval and
                                   moshi load it as is); LoRA adapters merged in
    OUT/state/step-NNNNNN/         accelerate state (weights, optimizer, scheduler, RNG) and
                                   each process's data position
    OUT/latest.json                the newest complete pair, replaced atomically last
    OUT/best.json                  the saved checkpoint with the lowest validation text loss
                                   so far (kept when older ones are pruned)

A run killed at any moment resumes from `latest.json`: a half-written step directory is
never referenced.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import torch
from moshi.modules.lora import replace_lora_with_linear

from hibiki.checkpoint import Checkpoint, save_checkpoint
from hibiki.files import write_text_atomic

LATEST = "latest.json"
BEST = "best.json"


def save_kyutai(lm: torch.nn.Module, base: Checkpoint, directory: Path, dtype: torch.dtype | None) -> Path:
    merged = copy.deepcopy(lm).cpu()
    replace_lora_with_linear(merged)  # no-op without adapters
    return save_checkpoint(directory, merged, base.mimi, base.info.tokenizer, base.lm_config,
                           mimi_config=base.info.mimi_config, metadata=base.metadata, dtype=dtype)


def read_record(out: Path, name: str = LATEST) -> dict | None:
    path = out / name
    return json.loads(path.read_text()) if path.is_file() else None


def write_record(out: Path, record: dict, name: str = LATEST) -> None:
    write_text_atomic(out / name, json.dumps(record, indent=2) + "\n")


def prune(folder: Path, keep: int, spare: Path | None = None) -> None:
    """Keeps the newest `keep` step-* directories, and `spare`."""
    spared = spare.resolve() if spare is not None else None
    steps = [s for s in sorted(folder.glob("step-*")) if s.resolve() != spared]
    for old in steps[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
