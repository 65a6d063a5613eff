"""Builds the small French->English evaluation set shipped in `eval/data/fr_en_mini`.

It lives in training/ because it speaks with the training pipeline's TTS (eval/ imports
nothing of training/). Generated, never downloaded: espeak-ng speaks the French side of `pairs.jsonl` (one
voice variant per utterance; long-form items join several sentences with pauses), and
the manifest pairs each recording with its English reference. The shipped files are
this script's output, so anyone can rebuild or extend the set offline:

    .venv/bin/python -m training.demo.mini_set --out eval/data/fr_en_mini
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import soundfile
from tqdm import tqdm

from eval.mini_set import HERE
from hibiki.audio import SAMPLE_RATE
from training.tts import Espeak, Voice, speak_sentences

PAUSE_S = 0.6  # between sentences of a long-form item


def build(pairs: Path, out: Path, language: str = "fr") -> tuple[int, float]:
    """Returns (utterances, seconds of speech)."""
    tts = Espeak()
    items = [json.loads(line) for line in pairs.read_text().splitlines() if line.strip()]
    (out / "audio").mkdir(parents=True, exist_ok=True)
    rows = []
    total = 0.0
    for item in tqdm(items, desc="speaking", unit="utt"):
        speech, _ = speak_sentences(tts, item["source"], Voice(language, **item["voice"]), PAUSE_S)
        pcm = speech.pcm
        audio = f"audio/{item['id']}.flac"
        soundfile.write(out / audio, pcm, SAMPLE_RATE, subtype="PCM_16")
        total += len(pcm) / SAMPLE_RATE
        rows.append({"id": item["id"], "audio": audio, "reference": " ".join(item["reference"]),
                     "source_text": " ".join(item["source"]), "sentences": len(item["source"])})
    (out / "manifest.jsonl").write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return len(rows), total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=Path, default=HERE / "pairs.jsonl", help="jsonl: id, source and reference sentences, voice.")
    parser.add_argument("--out", type=Path, default=HERE, help="Directory for audio/ and manifest.jsonl.")
    args = parser.parse_args()
    count, seconds = build(args.pairs, args.out)
    print(f"wrote {count} utterances ({seconds:.1f} s of speech) and {args.out / 'manifest.jsonl'}")


if __name__ == "__main__":
    main()
