"""Evaluation sets: a Hugging Face hub id, a local dataset directory, or a jsonl manifest.

Columns (names configurable, see `Columns`):
- `audio`: the source speech. A `datasets.Audio` feature, or a path (relative paths are
  resolved against the manifest's or dataset directory's folder).
- `reference`: the reference translation, a string or a list of sentences (joined with
  spaces: long-form sets hold several sentences per item).
- `id` (optional, default the row number) and `source_text` (optional, kept in the report).

Audio is decoded here (soundfile/sphn), not by `datasets`, so no media backend is needed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np

from hibiki.audio import AudioError, read_audio, read_audio_bytes

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"


class DatasetError(ValueError):
    """An evaluation set that cannot be used, with what was wrong and what is accepted."""


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
        for index, (item_id, row) in enumerate(zip(self.ids(), self.rows)):
            if item_id in skip:
                continue
            try:
                pcm = self._decode(row[c.audio], item_id)
            except AudioError as exc:
                logger.error("skipping item %s: %s", item_id, exc)
                continue
            reference = row[c.reference]
            if isinstance(reference, list):
                reference = " ".join(reference)
            source = row.get(c.source_text)
            yield EvalItem(item_id, pcm, str(reference).strip(), " ".join(source) if isinstance(source, list) else source)

    def references(self) -> dict[str, str]:
        refs = self.rows[self.columns.reference]
        return {i: " ".join(r) if isinstance(r, list) else str(r).strip() for i, r in zip(self.ids(), refs)}

    def _decode(self, audio, item_id: str) -> np.ndarray:
        if isinstance(audio, str):
            path = Path(audio)
            if not path.is_absolute() and self.base_dir is not None:
                path = self.base_dir / path
            return read_audio(path)
        if isinstance(audio, dict) and audio.get("bytes"):
            return read_audio_bytes(audio["bytes"], audio.get("path") or item_id)
        if isinstance(audio, dict) and audio.get("path"):
            return self._decode(audio["path"], item_id)
        raise AudioError(f"item {item_id}: audio column holds {type(audio).__name__}; accepted: a path, or a datasets Audio feature")


def load_eval_set(spec: str | Path, split: str = "test", columns: Columns = Columns(), limit: int | None = None) -> EvalSet:
    """Opens `spec`: a jsonl manifest, a directory (holding manifest.jsonl, a `save_to_disk`
    dataset, or data files), or a hub dataset id."""
    path = Path(spec)
    try:
        if path.is_dir() and (path / MANIFEST_NAME).is_file():
            path = path / MANIFEST_NAME
        if path.is_file():
            rows, base = datasets.load_dataset("json", data_files=str(path), split="train"), path.parent
        elif path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "state.json").is_file()):
            loaded = datasets.load_from_disk(str(path))
            rows, base = (_split(loaded, split, spec) if isinstance(loaded, datasets.DatasetDict) else loaded), path
        elif path.is_dir():
            rows, base = datasets.load_dataset(str(path), split=split), path
        else:
            rows, base = datasets.load_dataset(str(spec), split=split), None
    except (OSError, ValueError, datasets.exceptions.DatasetNotFoundError) as exc:  # OSError: unreachable hub too
        raise DatasetError(f"cannot open evaluation set {spec!r} ({exc}); accepted: a jsonl manifest, a directory "
                           f"with {MANIFEST_NAME}, a save_to_disk dataset or data files, or a hub dataset id") from exc
    missing = [c for c in (columns.audio, columns.reference) if c not in rows.column_names]
    if missing:
        raise DatasetError(f"evaluation set {spec!r} lacks column(s) {missing}; it has {rows.column_names} "
                           "(choose others with --audio-column / --reference-column)")
    if isinstance(rows.features[columns.audio], datasets.Audio):
        rows = rows.cast_column(columns.audio, datasets.Audio(decode=False))
    if limit is not None:
        rows = rows.select(range(min(limit, len(rows))))
    return EvalSet(rows, base, columns, str(spec))


def _split(loaded: datasets.DatasetDict, split: str, spec) -> datasets.Dataset:
    if split not in loaded:
        raise DatasetError(f"evaluation set {spec!r} has no split {split!r}; it has {list(loaded)}")
    return loaded[split]
