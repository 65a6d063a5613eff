"""One evaluation run: translate what is not yet translated, score what is not yet scored,
write the report. Everything lands in the output directory as it is produced, so an
interrupted run continues where it stopped when started again with the same arguments.

    OUT/run.json        what was evaluated, how (and accumulated translation time for the RTF)
    OUT/outputs/        <id>.wav, <id>.txt, <id>.json per utterance (this project's system)
    OUT/rows.jsonl      one scored row per utterance (eval/scoring.py)
    OUT/summary.json, summary.md, quality_latency.png, latency_distribution.png
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch
from tqdm import tqdm

from eval.asr import Transcriber
from eval.dataset import EvalSet
from eval.outputs import read_output, write_output
from eval.report import write_report
from eval.scoring import score_item
from eval.speaker import SpeakerSimilarity
from hibiki.audio import SAMPLE_RATE
from hibiki.dataset_source import DatasetError
from hibiki.engine import BatchedTranslator
from hibiki.file_translation import translate_pcms
from hibiki.files import write_text_atomic
from hibiki.words import words_from_tokens

logger = logging.getLogger(__name__)

IDENTITY = ("system", "dataset", "split", "limit")  # run.json keys that must match to resume


def open_run(out: Path, run: dict) -> dict:
    """Starts or resumes the run in `out`; refuses to mix two different evaluations."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "run.json"
    if path.is_file():
        previous = json.loads(path.read_text())
        clash = {k: (previous.get(k), run.get(k)) for k in IDENTITY if previous.get(k) != run.get(k)}
        if clash:
            differences = ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in clash.items())
            raise DatasetError(f"{out} holds another evaluation ({differences}); "
                               "use another --out, or the same arguments to resume")
        run = {**previous, **{k: v for k, v in run.items() if k not in ("translated_audio_s", "translate_wall_s")}}
    run.setdefault("translated_audio_s", 0.0)
    run.setdefault("translate_wall_s", 0.0)
    _save_run(out, run)
    return run


def _save_run(out: Path, run: dict) -> None:
    (out / "run.json").write_text(json.dumps(run, indent=2) + "\n")


def translate_missing(eval_set: EvalSet, translator: BatchedTranslator, outputs: Path, out: Path, run: dict) -> int:
    """Translates every item without a complete output, as the service would (80 ms frames, input EOS)."""
    done = {i for i in eval_set.ids() if (outputs / f"{i}.wav").is_file()}
    pending = len(eval_set) - len(done)
    if not pending:
        return 0
    tokenizer = translator.checkpoint.tokenizer
    audio_s, count, start = 0.0, 0, time.perf_counter()
    items = ((item.id, item.pcm) for item in eval_set.items(skip=done))
    with tqdm(total=pending, desc="translating", unit="utt", disable=None) as bar:
        for result in translate_pcms(translator, items):
            write_output(outputs, result.key, result.pcm, result.text, words_from_tokens(tokenizer, result.text_tokens))
            audio_s += result.input_samples / SAMPLE_RATE
            count += 1
            bar.update(1)
    run["translated_audio_s"] = round(run["translated_audio_s"] + audio_s, 3)
    run["translate_wall_s"] = round(run["translate_wall_s"] + time.perf_counter() - start, 3)
    _save_run(out, run)
    return count


def score_missing(eval_set: EvalSet, outputs: Path, out: Path, asr: Transcriber | None,
                  speaker: SpeakerSimilarity | None) -> dict[str, dict]:
    rows_path = out / "rows.jsonl"
    rows = {}
    if rows_path.is_file():
        text = rows_path.read_text()
        for line in text.splitlines():
            try:
                row = json.loads(line)
                rows[row["id"]] = row
            except (json.JSONDecodeError, KeyError):
                logger.warning("dropping a truncated line of %s (an interrupted run); it is scored again", rows_path)
        if text and (not text.endswith("\n") or len(rows) != len(text.splitlines())):
            write_text_atomic(rows_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows.values()))
    pending = len([i for i in eval_set.ids() if i not in rows])
    with rows_path.open("a") as sink, tqdm(total=pending, desc="scoring", unit="utt", disable=None) as bar:
        for item in eval_set.items(skip=set(rows)):
            row = score_item(item, read_output(outputs, item.id), asr, speaker)
            sink.write(json.dumps(row, ensure_ascii=False) + "\n")
            sink.flush()
            rows[item.id] = row
            bar.update(1)
    return rows


def run_eval(eval_set: EvalSet, out: Path, run: dict, translator: BatchedTranslator | None = None,
             from_dir: Path | None = None, asr: Transcriber | None = None, speaker: SpeakerSimilarity | None = None,
             compare: list[Path] = ()) -> dict:
    """Translates (unless scoring `from_dir`), scores and reports; returns the summary."""
    run = open_run(out, run)
    outputs = from_dir or out / "outputs"
    translated = 0
    if translator is not None:
        torch.manual_seed(run.get("seed", 0))
        translated = translate_missing(eval_set, translator, outputs, out, run)
    by_id = score_missing(eval_set, outputs, out, asr, speaker)
    rows = [by_id[i] for i in eval_set.ids() if i in by_id]
    summary = write_report(rows, run, out, compare)
    summary["translated_now"] = translated
    summary["skipped_items"] = len(eval_set) - len(rows)
    return summary
