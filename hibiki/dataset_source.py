"""Opening a Hugging Face dataset the ways users hold one: a hub id, a local directory
(`save_to_disk` output, or data files such as parquet/jsonl), or a jsonl manifest whose
audio paths are relative to it. Shared by evaluation and training data preparation."""

from __future__ import annotations

from pathlib import Path

import datasets

MANIFEST_NAME = "manifest.jsonl"
ACCEPTED = (f"a jsonl manifest, a directory with {MANIFEST_NAME}, a save_to_disk dataset or data files, "
            "or a hub dataset id")


class DatasetError(ValueError):
    """A dataset that cannot be used, with what was wrong and what is accepted."""


def open_dataset(spec: str | Path, split: str, audio_columns: tuple[str, ...] = ()) -> tuple[datasets.Dataset, Path | None]:
    """Returns the rows and the folder relative audio paths live in (None for hub datasets).

    `audio_columns` that are `datasets.Audio` features are cast to decode=False: audio is
    decoded by `hibiki.audio.read_audio_field`, so no media backend is needed.
    """
    path = Path(spec)
    try:
        if path.is_dir() and (path / MANIFEST_NAME).is_file():
            path = path / MANIFEST_NAME
        if path.is_file():
            rows, base = datasets.load_dataset("json", data_files=str(path), split="train"), path.parent
        elif path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "state.json").is_file()):
            loaded = datasets.load_from_disk(str(path))
            if isinstance(loaded, datasets.DatasetDict):
                if split not in loaded:
                    raise DatasetError(f"dataset {str(spec)!r} has no split {split!r}; it has {list(loaded)}")
                loaded = loaded[split]
            rows, base = loaded, path
        elif path.is_dir():
            rows, base = datasets.load_dataset(str(path), split=split), path
        else:
            rows, base = datasets.load_dataset(str(spec), split=split), None
    except DatasetError:
        raise
    except (OSError, ValueError, datasets.exceptions.DatasetNotFoundError) as exc:  # OSError: unreachable hub too
        raise DatasetError(f"cannot open dataset {str(spec)!r} ({exc}); accepted: {ACCEPTED}") from exc
    for column in audio_columns:
        if column in rows.column_names and isinstance(rows.features[column], datasets.Audio):
            rows = rows.cast_column(column, datasets.Audio(decode=False))
    return rows, base


def require_columns(rows: datasets.Dataset, spec: str | Path, columns: list[str], hint: str) -> None:
    missing = [c for c in columns if c not in rows.column_names]
    if missing:
        raise DatasetError(f"dataset {str(spec)!r} lacks column(s) {missing}; it has {rows.column_names} ({hint})")
