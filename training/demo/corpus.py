"""The demo speech corpus: pyrealb sentence pairs spoken by espeak-ng, by split.

    python -m training.demo.corpus [CONFIG.yaml] [key=value ...]      (--help lists the keys)

Each utterance joins 1 to 4 sentences of one split with pauses, spoken in French by one
drawn voice (variant, pitch, rate) and in English by another voice family. Rows, in
OUT/<split>/manifest.jsonl with audio under OUT/<split>/audio/, hold everything the rest
of the project reads: `audio` + `sentences` (spans, transcripts, translations) for
training.prepare, `reference` for hibiki eval, `target_audio` (English) for the codec.
Work is cut into chunks written atomically: a killed build resumes; the manifests are
assembled from the chunks at the end.
"""

from __future__ import annotations

import json
import logging
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import soundfile
from tqdm import tqdm

from hibiki.audio import SAMPLE_RATE
from hibiki.files import write_text_atomic
from training.config import run_script
from training.demo.sentences import SPLITS, SentenceGenerator, split_of
from training.tts import Espeak, TTSError, Voice, speak_sentences

logger = logging.getLogger("hibiki.corpus")

FRENCH_VARIANTS = ["m1", "m2", "m3", "m4", "m7", "f1", "f2", "f3", "f4"]
ENGLISH_VARIANTS = ["m3", "f5"]  # the English side: another voice family, few variants


@dataclass
class CorpusConfig:
    out: str = "out/demo_corpus"
    hours: float = 20.0  # French speech, all splits together (about as much English again)
    sentences_per_chunk: int = 300
    max_sentences: int = 4  # per utterance
    pause_s: list[float] = field(default_factory=lambda: [0.3, 0.9])
    rate_wpm: list[int] = field(default_factory=lambda: [140, 180])
    pitch: list[int] = field(default_factory=lambda: [30, 70])
    french_variants: list[str] = field(default_factory=lambda: list(FRENCH_VARIANTS))  # "": espeak-ng's plain voice
    workers: int = 2
    seed: int = 0



SECONDS_PER_SENTENCE = 2.6  # average espeak-ng French sentence (with its pause), to size the chunks


def build_chunk(args: tuple[CorpusConfig, int]) -> dict[str, int]:
    config, index = args
    out = Path(config.out)
    done = out / "chunks" / f"{index:05d}.done"
    if done.is_file():
        return json.loads(done.read_text())
    rng = random.Random(f"{config.seed}-{index}")
    generator = SentenceGenerator(seed=rng.randrange(1 << 30))
    tts = Espeak()
    by_split: dict[str, list] = {s: [] for s in SPLITS}
    while sum(len(v) for v in by_split.values()) < config.sentences_per_chunk:
        pair = generator.pair()
        if pair is not None:
            by_split[split_of(pair)].append(pair)
    counts = {}
    for split, pairs in by_split.items():
        rows = []
        audio_dir = out / split / "audio"
        audio_dir.mkdir(parents=True, exist_ok=True)
        position = 0
        while position < len(pairs):
            group = pairs[position:position + rng.randint(1, config.max_sentences)]
            position += len(group)
            utterance_id = f"{split}-{index:05d}-{len(rows):04d}"
            french = Voice("fr", rng.choice(config.french_variants) or None, rng.randint(*config.rate_wpm), rng.randint(*config.pitch))
            english = Voice("en-us", rng.choice(ENGLISH_VARIANTS), 160, 50)
            pause = rng.uniform(*config.pause_s)
            source, spans = speak_sentences(tts, [p.fr for p in group], french, pause)
            target, _ = speak_sentences(tts, [p.en for p in group], english, pause)
            soundfile.write(audio_dir / f"{utterance_id}.flac", source.pcm, SAMPLE_RATE, subtype="PCM_16")
            soundfile.write(audio_dir / f"{utterance_id}.en.flac", target.pcm, SAMPLE_RATE, subtype="PCM_16")
            rows.append({
                "id": utterance_id, "audio": f"audio/{utterance_id}.flac", "target_audio": f"audio/{utterance_id}.en.flac",
                "sentences": [{"start": a, "end": b, "text": p.fr, "translation": p.en} for (a, b), p in zip(spans, group)],
                "reference": " ".join(p.en for p in group), "source_text": " ".join(p.fr for p in group),
                "voice": french.espeak_voice, "source_s": round(source.duration, 3), "target_s": round(target.duration, 3),
            })
        part = out / split / "parts" / f"{index:05d}.jsonl"
        part.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(part, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        counts[split] = len(rows)
        counts[f"{split}_s"] = round(sum(r["source_s"] for r in rows), 1)
    done.parent.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps(counts))
    return counts


def check_voices(config: CorpusConfig) -> None:
    """Fails before any work on voices espeak-ng would silently replace with its default."""
    known = Espeak().variants()
    unknown = [v for v in config.french_variants if v and v not in known]
    if not config.french_variants or unknown:
        raise ValueError(f"french_variants must list espeak-ng variants (e.g. m3, f2) or \"\" for the plain voice; "
                         f"got {config.french_variants}" + (f", unknown: {unknown}" if unknown else ""))


def build(config: CorpusConfig) -> dict:
    check_voices(config)
    chunks = max(1, round(config.hours * 3600 / (config.sentences_per_chunk * SECONDS_PER_SENTENCE)))
    totals: dict[str, float] = {}
    with ProcessPoolExecutor(config.workers) as pool, tqdm(total=chunks, desc="corpus", unit="chunk", disable=None) as bar:
        for counts in pool.map(build_chunk, [(config, i) for i in range(chunks)]):
            for key, value in counts.items():
                totals[key] = totals.get(key, 0) + value
            bar.update(1)
    out = Path(config.out)
    for split in SPLITS:  # manifests from the chunks, in chunk order
        parts = sorted((out / split / "parts").glob("*.jsonl"))[:chunks]
        (out / split / "manifest.jsonl").write_text("".join(p.read_text() for p in parts))
    summary = {split: {"utterances": int(totals.get(split, 0)), "hours": round(totals.get(f"{split}_s", 0) / 3600, 2)}
               for split in SPLITS}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main() -> None:
    config, summary = run_script(CorpusConfig, __doc__, build, (ValueError, TTSError))
    print("demo corpus in " + config.out + ": " + ", ".join(
        f"{split} {s['utterances']} utterances ({s['hours']} h French + as much English)" for split, s in summary.items()))


if __name__ == "__main__":
    main()
