"""Options and helpers shared by every `hibiki` subcommand, wherever it is defined."""

from __future__ import annotations

import logging
from typing import Annotated, Optional

import torch
import typer

from hibiki.checkpoint import DTYPES, Checkpoint, CheckpointError, load_checkpoint, parse_dtype
from hibiki.default_model import default_model
from hibiki.engine import BatchedTranslator

logger = logging.getLogger("hibiki")

ModelOption = Annotated[Optional[str], typer.Option(
    "--model", "-m", help="Hugging Face repo id or local checkpoint directory (default: the embedded model).")]
DeviceOption = Annotated[str, typer.Option(help="'auto' (CUDA when present), 'cpu', 'cuda', 'cuda:1'...")]
DtypeOption = Annotated[str, typer.Option(help=f"LM precision: auto (bf16 on CUDA; on a CPU fp32 unless the model is too "
                                               f"big for the machine's memory), {', '.join(DTYPES)}.")]
CfgOption = Annotated[Optional[float], typer.Option(
    help="Voice-transfer guidance (checkpoints with original Hibiki's conditioner; ~3 is strong; 1: none).")]
# Sampling overrides of the checkpoint's `lm_gen_config`; a temperature of 0 is argmax for that stream.
TempOption = Annotated[Optional[float], typer.Option(help="Audio sampling temperature (0: argmax).")]
TempTextOption = Annotated[Optional[float], typer.Option(help="Text sampling temperature (0: argmax).")]
TopKOption = Annotated[Optional[int], typer.Option(help="Audio top-k.")]
TopKTextOption = Annotated[Optional[int], typer.Option(help="Text top-k.")]


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def open_model(model: str | None, device: str, dtype: str = "auto") -> Checkpoint:
    """Loads `model` (or the embedded default); exits with the checkpoint's error on failure."""
    try:
        return load_checkpoint(model or default_model(), device=resolve_device(device), dtype=parse_dtype(dtype))
    except CheckpointError as exc:
        logger.error("%s", exc)
        raise typer.Exit(2) from exc


def open_translator(checkpoint: Checkpoint, slots: int, max_tail_s: float, greedy: bool = False,
                    pipeline: bool = False, **overrides: float | None) -> BatchedTranslator:
    """The translator of a command: the checkpoint's sampling with the command's overrides;
    exits with the reason when the checkpoint cannot take them (e.g. guidance without a conditioner)."""
    try:
        sampling = checkpoint.sampling(greedy=greedy or None, **overrides)
        return BatchedTranslator(checkpoint, slots=slots, sampling=sampling, max_tail_s=max_tail_s, pipeline=pipeline)
    except ValueError as exc:
        logger.error("%s", exc)
        raise typer.Exit(2) from exc
