"""Options and helpers shared by every `hibiki` subcommand, wherever it is defined."""

from __future__ import annotations

import logging
from typing import Annotated, Optional

import torch
import typer

from hibiki.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from hibiki.default_model import default_model

logger = logging.getLogger("hibiki")

ModelOption = Annotated[Optional[str], typer.Option(
    "--model", "-m", help="Hugging Face repo id or local checkpoint directory (default: the embedded model).")]
DeviceOption = Annotated[str, typer.Option(help="'auto' (CUDA when present), 'cpu', 'cuda', 'cuda:1'...")]
# Sampling overrides of the checkpoint's `lm_gen_config`; a temperature of 0 is argmax for that stream.
TempOption = Annotated[Optional[float], typer.Option(help="Audio sampling temperature (0: argmax).")]
TempTextOption = Annotated[Optional[float], typer.Option(help="Text sampling temperature (0: argmax).")]
TopKOption = Annotated[Optional[int], typer.Option(help="Audio top-k.")]
TopKTextOption = Annotated[Optional[int], typer.Option(help="Text top-k.")]


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def open_model(model: str | None, device: str) -> Checkpoint:
    """Loads `model` (or the embedded default); exits with the checkpoint's error on failure."""
    try:
        return load_checkpoint(model or default_model(), device=resolve_device(device))
    except CheckpointError as exc:
        logger.error("%s", exc)
        raise typer.Exit(2) from exc
