"""Evaluation sets: a Hugging Face hub id, a local dataset directory, or a jsonl manifest.

Columns (names configurable, see `Columns`):
- `audio`: the source speech. A `datasets.Audio` feature, or a path (relative paths are
  resolved against the manifest's or dataset directory's folder).
- `reference`: the reference translation, a string or a list of sentences (joined with
  spaces: long-form sets hold several sentences per item).
- `id` (optional, default the row number) and `source_text` (optional, kept in the report).

Audio is decoded by hibiki.audio (soundfile/sphn), not by `datasets`: no media backend is needed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np

from hibiki.audio import AudioError, read_audio_field
from hibiki.dataset_source import open_dataset, require_columns

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Columns:
    audio: str = "audio"
    reference: str = "reference"
    id: str = "id"
    source_text: str = "source_text"


@dataclass
class EvalItem:
    id: str
    pcm: np.ndarray  # 24 kHz mono float32
    reference: str
    source_text: str | None = None


@dataclass
class EvalSet:
    rows: datasets.Dataset
    base_dir: Path | None  # where relative audio paths live
    columns: Columns
    name: str

    def __len__(self) -> int:
        return len(self.rows)

    def ids(self) -> list[str]:
        if self.columns.id in self.rows.column_names:
            return [str(i) for i in self.rows[self.columns.id]]
        return [f"{i:06d}" for i in range(len(self.rows))]

    def items(self, skip: set[str] | frozenset = frozenset()) -> Iterator[EvalItem]:
        """Decoded items, in order; an item whose audio cannot be decoded is logged and skipped."""
        c = self.columns
        for item_id, row in zip(self.ids(), self.rows):
            if item_id in skip:
                continue
            try:
                pcm = read_audio_field(row[c.audio], f"item {item_id}", self.base_dir)
            except AudioError as exc:
                logger.error("skipping item %s: %s", item_id, exc)
                continue
            reference = row[c.reference]
            if isinstance(reference, list):
                reference = " ".join(reference)
            source = row.get(c.source_text)
            yield EvalItem(item_id, pcm, str(reference).strip(), " ".join(source) if isinstance(source, list) else source)


def load_eval_set(spec: str | Path, split: str = "test", columns: Columns = Columns(), limit: int | None = None) -> EvalSet:
    """Opens `spec` (see `hibiki.dataset_source.open_dataset`) as an evaluation set."""
    rows, base = open_dataset(spec, split, audio_columns=(columns.audio,))
    require_columns(rows, spec, [columns.audio, columns.reference], "choose others with --audio-column / --reference-column")
    if limit is not None:
        rows = rows.select(range(min(limit, len(rows))))
    return EvalSet(rows, base, columns, str(spec))
