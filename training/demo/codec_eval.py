"""Quality and speed of a demo codec on held-out (test split) audio.

    python -m training.demo.codec_eval --codec out/demo_codec --corpus out/demo_corpus --limit 40

Reconstruction runs the way the engine uses the codec: streaming, one 80 ms frame at a
time, encode then decode, on one CPU thread (its real-time factor is reported). Quality:
Whisper (tiny.en, offline) word error rate against the reference English text, for the
original espeak-ng audio and for its reconstruction, and the ASR-BLEU of each (the
ceilings for an LM speaking through this codec, scored as `hibiki eval` scores ASR-BLEU);
and the multi-resolution STFT distance between them, English and French.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import auraloss
import jiwer
import numpy as np
import torch
from tqdm import tqdm

from eval.asr import Transcriber
from eval.bleu import corpus_bleu, normalise
from hibiki.audio import FRAME_SIZE, SAMPLE_RATE, read_audio
from hibiki.checkpoint import CheckpointError, load_mimi


@torch.no_grad()
def reconstruct(mimi, pcm: np.ndarray) -> tuple[np.ndarray, float]:
    """Streaming encode + decode frame by frame; returns the audio and the seconds it took."""
    frames = -(-len(pcm) // FRAME_SIZE)
    padded = np.zeros(frames * FRAME_SIZE, dtype=np.float32)
    padded[:len(pcm)] = pcm
    out = []
    start = time.perf_counter()
    with mimi.streaming(1):
        for i in range(frames):
            codes = mimi.encode(torch.from_numpy(padded[i * FRAME_SIZE:(i + 1) * FRAME_SIZE])[None, None])
            out.append(mimi.decode(codes)[0, 0].numpy())
    return np.concatenate(out)[:len(pcm)], time.perf_counter() - start


def evaluate(codec: Path, corpus: Path, split: str = "test", limit: int = 40) -> dict:
    mimi = load_mimi(codec).eval()
    rows = [json.loads(line) for line in (corpus / split / "manifest.jsonl").read_text().splitlines()][:limit]
    asr = Transcriber()
    stft = auraloss.freq.MultiResolutionSTFTLoss()
    refs, original_hyps, codec_hyps = [], [], []
    distance = {"en": [], "fr": []}
    audio_s = compute_s = 0.0
    for row in tqdm(rows, desc="codec eval", unit="utt"):
        for language, key in (("en", "target_audio"), ("fr", "audio")):
            pcm = read_audio(corpus / split / row[key])
            rebuilt, seconds = reconstruct(mimi, pcm)
            audio_s += len(pcm) / SAMPLE_RATE
            compute_s += seconds
            distance[language].append(float(stft(torch.from_numpy(rebuilt)[None, None], torch.from_numpy(pcm)[None, None])))
            if language == "en":
                refs.append(normalise(row["reference"]))
                original_hyps.append(normalise(asr.transcribe(pcm).text))
                codec_hyps.append(normalise(asr.transcribe(rebuilt).text))
    return {
        "utterances": len(rows),
        "wer_original": round(100 * jiwer.wer(refs, original_hyps), 2),
        "wer_codec": round(100 * jiwer.wer(refs, codec_hyps), 2),
        "asr_bleu_original": corpus_bleu(original_hyps, refs).score,
        "asr_bleu_codec": corpus_bleu(codec_hyps, refs).score,
        "stft_distance_en": round(float(np.mean(distance["en"])), 4),
        "stft_distance_fr": round(float(np.mean(distance["fr"])), 4),
        "streaming_rtf_one_thread": round(compute_s / audio_s, 4),
        "codec": str(codec),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codec", type=Path, default=Path("out/demo_codec"))
    parser.add_argument("--corpus", type=Path, default=Path("out/demo_corpus"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--out", type=Path, help="Write the figures as JSON here.")
    args = parser.parse_args()
    if not (args.corpus / args.split / "manifest.jsonl").is_file():
        parser.error(f"no {args.corpus / args.split / 'manifest.jsonl'}: --corpus takes a directory written by "
                     f"training.demo.corpus, --split one of its splits (train, valid, test)")
    torch.set_num_threads(1)  # the real-time factor it reports is one thread's
    try:
        figures = evaluate(args.codec, args.corpus, args.split, args.limit)
    except CheckpointError as error:
        parser.error(str(error))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
