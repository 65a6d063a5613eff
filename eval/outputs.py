"""A system's outputs for one utterance: `<id>.wav` (speech), `<id>.txt` (text) and, for
this project's own runs, `<id>.json` (inner-monologue word times from the text stream).

`--from-dir` scores any directory laid out this way, so other systems are scored exactly
as ours are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hibiki.audio import read_audio, write_wav
from hibiki.files import atomic_path, write_text_atomic
from hibiki.words import Word


@dataclass
class Output:
    pcm: np.ndarray | None
    text: str | None
    text_words: list[Word] | None  # None when the system gives no text-stream times


def read_output(directory: Path, item_id: str) -> Output:
    wav, txt, meta = (directory / f"{item_id}{ext}" for ext in (".wav", ".txt", ".json"))
    words = None
    if meta.is_file():
        words = [Word(**w) for w in json.loads(meta.read_text())["text_words"]]
    return Output(read_audio(wav) if wav.is_file() else None,
                  txt.read_text().strip() if txt.is_file() else None, words)


def write_output(directory: Path, item_id: str, pcm: np.ndarray, text: str, text_words: list[Word]) -> None:
    """Writes the three files, each atomically, the wav last: a present wav means a complete output."""
    directory.mkdir(parents=True, exist_ok=True)
    write_text_atomic(directory / f"{item_id}.txt", text + "\n")
    write_text_atomic(directory / f"{item_id}.json", json.dumps({"text_words": [w.as_dict() for w in text_words]}))
    with atomic_path(directory / f"{item_id}.wav") as tmp:
        write_wav(tmp, pcm)
