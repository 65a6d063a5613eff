"""Data preparation: a sentence-level parallel speech dataset -> sharded training examples.

    python -m training.prepare CONFIG.yaml [key=value ...]      (--help lists the keys)

Input rows (a hub id, local dataset directory or jsonl manifest, see
hibiki.dataset_source): `audio` (source speech) and `sentences`, a list of
{start, end, translation[, text][, target_audio]}: the source sentence spans in seconds
(or, without them, the source transcript `text` of each sentence, from which the spans
are estimated), the translations, and optionally a target recording per sentence.
Target speech comes from that recording or else the TTS (espeak-ng by default), placed by
the coarse alignment, and everything is encoded with the base checkpoint's Mimi and
tokenizer.

Output: `OUT/part-IIIII-KKKKK.parquet` (shard I of --shard I/N, part K of `rows_per_part`
rows), readable with `datasets.load_dataset("parquet", ..., streaming=True)`, and
`OUT/report-IIIII.json`. Each part is written atomically and skipped when present, so a
killed run resumes; inputs that cannot become examples are counted by reason, never fatal.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from tqdm import tqdm

from hibiki.audio import FRAME_PERIOD_S, AudioError, read_audio_field
from hibiki.checkpoint import load_checkpoint
from hibiki.dataset_source import DatasetError, open_dataset, require_columns
from hibiki.default_model import default_model
from hibiki.files import atomic_path
from training.alignment import AlignmentConfig
from training.config import run_script
from training.examples import ExampleError, build_example, parse_sentences
from training.tts import Espeak, TTSError, Voice

logger = logging.getLogger("hibiki.prepare")

FEATURES = datasets.Features({
    "id": datasets.Value("string"),
    "n_frames": datasets.Value("int32"),
    "source_end_frame": datasets.Value("int32"),
    "text_tokens": datasets.Sequence(datasets.Value("int32")),
    "target_codes": datasets.Sequence(datasets.Sequence(datasets.Value("int16"))),
    "source_codes": datasets.Sequence(datasets.Sequence(datasets.Value("int16"))),
    "target_text": datasets.Value("string"),
    "source_text": datasets.Value("string"),
    "sentences": datasets.Value("string"),  # json: per-sentence spans and translations (GRPO rewards)
})


@dataclass
class PrepareConfig:
    dataset: str = "???"  # required
    split: str = "train"
    out: str = "out/data"
    model: str | None = None  # checkpoint whose Mimi and tokenizer encode the data (default: embedded model)
    audio_column: str = "audio"
    sentences_column: str = "sentences"
    id_column: str = "id"
    voice: str = "en-us"  # espeak-ng voice of the target language
    voice_variants: list[str] = field(default_factory=lambda: ["m1", "m3", "f2", "f4"])  # one drawn per example
    rate_wpm: list[int] = field(default_factory=lambda: [145, 175])  # drawn uniformly per example
    rows_per_part: int = 256
    workers: int = 1
    shard: str = "0/1"  # this machine's share of the input rows: I/N takes rows with index % N == I
    limit: int | None = None
    max_seconds: float = 240.0
    seed: int = 0
    alignment: AlignmentConfig = field(default_factory=AlignmentConfig)


def parse_shard(shard: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in shard.split("/"))
    except ValueError:
        raise ValueError(f"shard must be I/N (e.g. 0/4), got {shard!r}") from None
    if not 0 <= index < count:
        raise ValueError(f"shard {shard!r}: I must be in [0, N)")
    return index, count


_worker: dict = {}


def _init_worker(config: PrepareConfig) -> None:
    torch.set_num_threads(1)
    checkpoint = load_checkpoint(config.model or default_model(), device="cpu")
    rows, base = open_dataset(config.dataset, config.split, audio_columns=(config.audio_column,))
    _worker.update(config=config, mimi=checkpoint.mimi, tokenizer=checkpoint.tokenizer, tts=Espeak(),
                   convention=checkpoint.convention, rows=rows, base=base,
                   max_frames=min(round(config.max_seconds / FRAME_PERIOD_S), checkpoint.lm.context))


def _build_part(task: tuple[Path, list[int]]) -> dict:
    """Builds one output part from input row indices; returns its counts."""
    path, indices = task
    w = _worker
    config: PrepareConfig = w["config"]
    counts: Counter = Counter()
    examples, failures = [], []
    for index in indices:
        row = w["rows"][index]
        row_id = str(row.get(config.id_column, index))
        rng = np.random.default_rng([config.seed, index])
        try:
            source = read_audio_field(row[config.audio_column], f"row {row_id}", w["base"])
            sentences = parse_sentences(row[config.sentences_column], source,
                                        lambda cell, name: read_audio_field(cell, f"row {row_id} {name}", w["base"]))
            voice = Voice(config.voice, str(rng.choice(config.voice_variants)), int(rng.integers(*config.rate_wpm, endpoint=True)))
            example = build_example(source, sentences, mimi=w["mimi"], tokenizer=w["tokenizer"], tts=w["tts"], voice=voice,
                                    rng=rng, config=config.alignment, max_frames=w["max_frames"], convention=w["convention"])
        except (ExampleError, AudioError, TTSError) as exc:
            reason = getattr(exc, "reason", "bad_audio" if isinstance(exc, AudioError) else "tts_error")
            counts[reason] += 1
            failures.append(f"{row_id}: {reason}: {exc}")
            continue
        example["id"] = row_id
        example["sentences"] = json.dumps(example["sentences"], ensure_ascii=False)
        example["target_codes"] = example["target_codes"].tolist()
        example["source_codes"] = example["source_codes"].tolist()
        example["text_tokens"] = example["text_tokens"].tolist()
        examples.append(example)
        counts["ok"] += 1
        counts["frames"] += example["n_frames"]
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pylist(examples, schema=FEATURES.arrow_schema), tmp)
    return {"counts": dict(counts), "failures": failures[:20]}


def prepare(config: PrepareConfig) -> dict:
    shard_index, shard_count = parse_shard(config.shard)
    rows, _ = open_dataset(config.dataset, config.split, audio_columns=(config.audio_column,))
    require_columns(rows, config.dataset, [config.audio_column, config.sentences_column],
                    "set audio_column= / sentences_column=")
    indices = list(range(shard_index, len(rows), shard_count))[:config.limit]
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [(out / f"part-{shard_index:05d}-{k:05d}.parquet", indices[start:start + config.rows_per_part])
             for k, start in enumerate(range(0, len(indices), config.rows_per_part))]
    todo = [t for t in tasks if not t[0].is_file()]
    report_path = out / f"report-{shard_index:05d}.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {"counts": {}, "failures": []}
    counts = Counter(report["counts"])
    start = time.perf_counter()
    logger.info("shard %d/%d: %d rows in %d parts, %d already done",
                shard_index, shard_count, len(indices), len(tasks), len(tasks) - len(todo))
    with ProcessPoolExecutor(config.workers, initializer=_init_worker, initargs=(config,)) as pool, \
            tqdm(total=sum(len(i) for _, i in todo), desc="preparing", unit="row", disable=None) as bar:
        for (path, part_indices), result in zip(todo, pool.map(_build_part, todo)):
            counts.update(result["counts"])
            report["failures"] = (report["failures"] + result["failures"])[-200:]
            report.update(counts=dict(counts), config=asdict(config), parts=len(tasks))
            report_path.write_text(json.dumps(report, indent=2) + "\n")
            bar.update(len(part_indices))
    report["hours"] = round(counts["frames"] * FRAME_PERIOD_S / 3600, 3)
    report["wall_s"] = round(time.perf_counter() - start, 1)
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> None:
    config, report = run_script(PrepareConfig, __doc__, prepare, (DatasetError, ValueError), argv)
    counts = report["counts"]
    skipped = {k: v for k, v in counts.items() if k not in ("ok", "frames")}
    print(f"prepared {counts.get('ok', 0)} examples ({report['hours']} h aligned) in {config.out}; "
          f"skipped {sum(skipped.values())} {skipped or ''}; "
          f"report: {Path(config.out) / f'report-{parse_shard(config.shard)[0]:05d}.json'}")


if __name__ == "__main__":
    main()
