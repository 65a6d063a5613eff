"""`hibiki eval`: translate an evaluation set with the streaming engine and score it."""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from eval.asr import DEFAULT_MODEL, Transcriber
from eval.dataset import Columns, load_eval_set
from eval.mini_set import HERE as MINI_SET
from eval.run import run_eval
from eval.speaker import SpeakerSimilarity
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
    resolve_device,
)
from hibiki.dataset_source import DatasetError

logger = logging.getLogger("hibiki.eval")


def evaluate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory (outputs, rows.jsonl, summary, plots); resumable.")],
    model: ModelOption = None,
    dataset: Annotated[str, typer.Option(help="Hub dataset id, local dataset directory, or jsonl manifest.")] = str(MINI_SET),
    split: Annotated[str, typer.Option(help="Split of a hub or saved dataset.")] = "test",
    limit: Annotated[Optional[int], typer.Option(help="Only the first N utterances.")] = None,
    from_dir: Annotated[Optional[Path], typer.Option(
        help="Score existing outputs (<id>.wav and/or <id>.txt per utterance) instead of translating.")] = None,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
    slots: Annotated[int, typer.Option(help="Utterances translated together in one batch.")] = 8,
    greedy: Annotated[bool, typer.Option(help="Argmax instead of the checkpoint's sampling.")] = False,
    temp: TempOption = None,
    temp_text: TempTextOption = None,
    top_k: TopKOption = None,
    top_k_text: TopKTextOption = None,
    cfg_coef: CfgOption = None,
    seed: Annotated[int, typer.Option(help="Random seed for sampling.")] = 4242,
    max_tail: Annotated[float, typer.Option(help="Seconds generated past the input end when the model never ends its text.")] = 10.0,
    asr_model: Annotated[str, typer.Option(help=f"Whisper for ASR-BLEU and speech latency: {DEFAULT_MODEL} (offline), "
                                                "a faster-whisper name (e.g. medium) or a CTranslate2 directory; "
                                                "'none' skips.")] = DEFAULT_MODEL,
    speaker_sim: Annotated[bool, typer.Option(help="Speaker similarity between source and output (Resemblyzer).")] = True,
    audio_column: str = "audio",
    reference_column: str = "reference",
    id_column: str = "id",
    source_column: str = "source_text",
    compare: Annotated[Optional[list[Path]], typer.Option(help="Other run directories to place on the quality/latency plot.")] = None,
) -> None:
    """Evaluate a model (or existing outputs): BLEU, ASR-BLEU, LAAL, End Offset, speaker similarity, RTF."""
    if from_dir is not None and not from_dir.is_dir():
        logger.error("--from-dir %s is not a directory (expected <id>.wav / <id>.txt per utterance)", from_dir)
        raise typer.Exit(2)
    try:
        eval_set = load_eval_set(dataset, split, Columns(audio_column, reference_column, id_column, source_column), limit)
    except DatasetError as exc:
        logger.error("%s", exc)
        raise typer.Exit(2) from exc
    torch_device = resolve_device(device)
    run = {"dataset": dataset, "split": split, "limit": limit, "asr_model": None if asr_model == "none" else asr_model,
           "device": str(torch_device), "seed": seed, "command": shlex.join(["hibiki", *sys.argv[1:]])}
    translator = None
    if from_dir is not None:
        run["system"] = str(from_dir)
    else:
        checkpoint = open_model(model, device, dtype)
        translator = open_translator(checkpoint, max(1, min(slots, len(eval_set))), max_tail, greedy, temp=temp,
                                     temp_text=temp_text, top_k=top_k, top_k_text=top_k_text, cfg_coef=cfg_coef)
        run.update(system=checkpoint.source, slots=translator.batch_size, sampling=vars(translator.sampling))
    asr = None if asr_model == "none" else Transcriber(asr_model, device=str(torch_device))
    speaker = SpeakerSimilarity(str(torch_device)) if speaker_sim else None
    try:
        summary = run_eval(eval_set, out, run, translator, from_dir, asr, speaker, compare or [])
    except DatasetError as exc:
        logger.error("%s", exc)
        raise typer.Exit(2) from exc
    typer.echo((out / "summary.md").read_text())
    typer.echo(f"{summary['utterances']} utterance(s) scored ({summary['translated_now']} translated now, "
               f"{summary['skipped_items']} skipped); report: {out / 'summary.md'}, rows: {out / 'rows.jsonl'}, "
               f"plots: {', '.join(summary['plots'])}")
