"""`hibiki` command line: translate files, describe checkpoints.

Other parts of the project add their commands (`hibiki serve`, `hibiki eval`, `hibiki
prepare|sft|grpo`) through the `hibiki.commands` entry-point group, so this core package
never imports them.
"""

from __future__ import annotations

import json
import logging
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Optional

import torch
import typer
from tqdm import tqdm

from hibiki.audio import FRAME_PERIOD_S, SAMPLE_RATE, AudioError, read_audio, write_wav
from hibiki.checkpoint import Checkpoint
from hibiki.cli_common import (
    CfgOption,
    DeviceOption,
    DtypeOption,
    ModelOption,
    TempOption,
    TempTextOption,
    TopKOption,
    TopKTextOption,
    open_model,
    open_translator,
)
from hibiki.file_translation import translate_pcms

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Hibiki: simultaneous speech-to-speech translation on Kyutai's Moshi architecture.")
logger = logging.getLogger("hibiki")

@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def translate(
    inputs: Annotated[list[Path], typer.Argument(help="Audio files (wav, flac, mp3, ogg...; any rate; stereo is downmixed).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for <name>.wav and <name>.txt per input.")],
    model: ModelOption = None,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
    slots: Annotated[int, typer.Option(help="Files translated together in one batch.")] = 8,
    temp: TempOption = None,
    temp_text: TempTextOption = None,
    top_k: TopKOption = None,
    top_k_text: TopKTextOption = None,
    greedy: Annotated[bool, typer.Option(help="Argmax instead of sampling.")] = False,
    cfg_coef: CfgOption = None,
    max_tail: Annotated[float, typer.Option(help="Seconds generated past the input end when the model never ends its text.")] = 10.0,
    seed: Annotated[int, typer.Option(help="Random seed for sampling.")] = 4242,
) -> None:
    """Translate audio files; writes the translated speech and text of each."""
    torch.manual_seed(seed)
    checkpoint = open_model(model, device, dtype)
    translator = open_translator(checkpoint, max(1, min(slots, len(inputs))), max_tail, greedy, temp=temp,
                                 temp_text=temp_text, top_k=top_k, top_k_text=top_k_text, cfg_coef=cfg_coef)
    out.mkdir(parents=True, exist_ok=True)
    failures: dict[Path, str] = {}
    names = _output_names(inputs)
    audio = []
    for path in inputs:
        try:
            audio.append((path, read_audio(path)))
        except AudioError as exc:
            failures[path] = str(exc)
            logger.error("skipping %s", exc)
    total_seconds = sum(len(pcm) for _, pcm in audio) / SAMPLE_RATE
    start = time.perf_counter()
    written = 0
    with tqdm(total=round(total_seconds, 2), unit="s", desc="translating", disable=None) as bar:
        def progress(frames: int) -> None:
            bar.update(round(frames * FRAME_PERIOD_S, 2))

        for result in translate_pcms(translator, audio, on_frames=progress):
            stem = out / names[result.key]
            write_wav(stem.with_suffix(".wav"), result.pcm)
            stem.with_suffix(".txt").write_text(result.text + "\n")
            written += 1
            tqdm.write(f"{result.key} -> {stem.with_suffix('.wav')}: {result.text!r}")
    elapsed = time.perf_counter() - start
    speed = ""
    if total_seconds and elapsed:
        speed = (f": real-time factor {elapsed / total_seconds:.3f} "
                 f"({total_seconds / elapsed:.1f}x real time)")
    typer.echo(f"translated {written} file(s), {total_seconds:.1f} s of audio in {elapsed:.1f} s on "
               f"{translator.device} with {translator.batch_size} slot(s){speed}; outputs in {out}")
    if failures:
        typer.echo(f"{len(failures)} input(s) failed:", err=True)
        for path, reason in failures.items():
            typer.echo(f"  {reason}", err=True)
        raise typer.Exit(1)


def _output_names(inputs: list[Path]) -> dict[Path, str]:
    """Output stem per input: its file stem, numbered when two inputs share one."""
    names: dict[Path, str] = {}
    used: set[str] = set()
    for path in inputs:
        name, n = path.stem, 1
        while name in used:
            n += 1
            name = f"{path.stem}-{n}"
        used.add(name)
        names[path] = name
    return names


@app.command()
def info(
    model: Annotated[Optional[str], typer.Argument(help="Repo id or checkpoint directory (default: the embedded model).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Describe a checkpoint: sizes, streams, delays, sampling defaults."""
    checkpoint = open_model(model, "cpu")
    description = describe(checkpoint)
    if as_json:
        typer.echo(json.dumps(description, indent=2))
        return
    for key, value in description.items():
        typer.echo(f"{key:>22}: {value}")


def describe(checkpoint: Checkpoint) -> dict:
    lm, mimi = checkpoint.lm, checkpoint.mimi
    config = checkpoint.lm_config
    return {
        "source": checkpoint.source,
        "model_type": checkpoint.info.model_type,
        "lm_parameters": sum(p.numel() for p in lm.parameters()),
        "mimi_parameters": sum(p.numel() for p in mimi.parameters()),
        "temporal_transformer": f"dim {lm.dim}, {config.get('num_layers')} layers, {config.get('num_heads')} heads, context {lm.context}",
        "temporal_attention": f"{config.get('positional_embedding')}, kv_repeat {config.get('kv_repeat', 1)}, "
                              f"max_period {config.get('max_period')}",
        "depth_transformer": f"dim {config.get('depformer_dim')}, {config.get('depformer_num_layers')} layers, "
                             f"weights schedule {config.get('depformer_weights_per_step_schedule') or 'one per step'}",
        "streams": f"text (inner monologue) + {lm.dep_q} generated audio codebooks + {lm.n_q - lm.dep_q} source audio codebooks",
        "delays": lm.delays,
        "text_vocabulary": lm.text_card,
        "tokenizer_pieces": checkpoint.tokenizer.vocab_size(),
        "audio_codebook_size": lm.card,
        "mimi": f"{mimi.sample_rate} Hz, {mimi.frame_rate} Hz frames, {mimi.total_codebooks} codebooks ({mimi.num_codebooks} used)",
        "voice_transfer_conditioner": checkpoint.voice_conditioner,
        "stream_convention": checkpoint.convention.name,
        "dtype": str(next(lm.parameters()).dtype).removeprefix("torch."),
        "lm_gen_config": checkpoint.info.lm_gen_config,
        "model_id": checkpoint.info.model_id,
    }


def _register_plugins() -> None:
    """Commands from the `hibiki.commands` entry points; a function's `command_settings`
    attribute, if it has one, holds `app.command` keywords (the training stages parse
    their own `key=value` arguments)."""
    for entry in entry_points(group="hibiki.commands"):
        command = entry.load()
        app.command(entry.name, **getattr(command, "command_settings", {}))(command)


_register_plugins()

if __name__ == "__main__":
    app()
