"""A system's outputs for one utterance: `<id>.wav` (speech), `<id>.txt` (text) and, for
this project's own runs, `<id>.json` (inner-monologue word times from the text stream).

`--from-dir` scores any directory laid out this way, so other systems are scored exactly
as ours are.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hibiki.audio import read_audio, write_wav
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
    _atomic_text(directory / f"{item_id}.txt", text + "\n")
    _atomic_text(directory / f"{item_id}.json", json.dumps({"text_words": [w.as_dict() for w in text_words]}))
    tmp = directory / f".{item_id}.tmp.wav"
    write_wav(tmp, pcm)
    os.replace(tmp, directory / f"{item_id}.wav")


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
