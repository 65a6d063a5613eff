"""Data preparation: alignment invariants, sharding, resume, and bad inputs counted, not fatal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import datasets
import numpy as np
import pytest

from hibiki.audio import FRAME_PERIOD_S
from hibiki.checkpoint import load_checkpoint
from hibiki.tokens import EOS, EPAD, PAD
from hibiki.words import Word
from training.alignment import AlignmentConfig, Span, place_targets, text_stream
from training.prepare import PrepareConfig, prepare
from training.tts import Espeak, TTSError, Voice


def test_place_targets_never_before_source_or_previous_target():
    rng = np.random.default_rng(0)
    config = AlignmentConfig(delay_max_frac=0.5, sentence_gap_s=0.1)
    sources = [Span(0.0, 2.0), Span(2.2, 3.0), Span(3.1, 6.0)]
    for _ in range(200):
        durations = rng.uniform(0.5, 4.0, size=3)
        starts = place_targets(sources, durations, rng, config)
        for i, (start, source) in enumerate(zip(starts, sources)):
            assert source.start <= start
            if i:
                assert start >= starts[i - 1] + durations[i - 1] + 0.1 - 1e-9
            else:
                assert start <= source.start + 0.5 * source.duration


def test_drawn_lag_spreads_first_sentence_between_bounds():
    """A lag with a spread is what gives GRPO earlier timings to prefer; a constant lag gives none."""
    rng = np.random.default_rng(0)
    config = AlignmentConfig(delay_max_frac=0.0, min_delay_s=1.0, max_delay_s=2.0)
    lags = [place_targets([Span(0.5, 3.0)], [2.0], rng, config)[0] - 0.5 for _ in range(500)]
    assert 1.0 <= min(lags) < 1.1 and 1.9 < max(lags) <= 2.0
    constant = AlignmentConfig(delay_max_frac=0.0, min_delay_s=2.0)
    assert {place_targets([Span(0.5, 3.0)], [2.0], rng, constant)[0] for _ in range(20)} == {2.5}


def test_a_hanging_tts_is_killed_and_reported_not_waited_on(tmp_path):
    """A stalled espeak-ng used to take the whole corpus build down with a raw TimeoutExpired."""
    hanging = tmp_path / "espeak-ng"
    hanging.write_text("#!/bin/sh\nexec sleep 30\n")
    hanging.chmod(0o755)
    with pytest.raises(TTSError, match=r"timed out twice \(0.3 s\) on 'bonjour' with voice fr"):
        Espeak(str(hanging), timeout_s=0.3).synthesize("bonjour", Voice("fr"))


def test_text_stream_places_words_epad_and_eos(tiny):
    tokenizer = tiny.tokenizer
    words = [Word("Hello", 0.40, 0.80), Word("everyone.", 0.82, 1.50)]
    tokens = text_stream(words, 30, tokenizer, min_eos_frame=25)
    first = round(0.40 / FRAME_PERIOD_S)
    assert tokens[first - 1] == EPAD and tokens[first] == tokenizer.encode("Hello")[0]
    assert tokenizer.decode([t for t in tokens.tolist() if t > 3]) == "Hello everyone."
    assert tokens[25] == EOS and (tokens == EOS).sum() == 1
    assert set(tokens[26:].tolist()) == {PAD}
    with pytest.raises(ValueError, match="does not fit"):
        text_stream(words, 10, tokenizer, min_eos_frame=12)


def _examples(out: Path) -> list[dict]:
    return list(datasets.load_dataset("parquet", data_files=str(out / "*.parquet"), split="train"))


def test_prepare_alignment_invariants_resume_and_shards(tiny_dir, parallel_set, tmp_path):
    out = tmp_path / "data"
    config = PrepareConfig(dataset=str(parallel_set), out=str(out), model=str(tiny_dir), rows_per_part=4, workers=2, limit=8)
    report = prepare(config)
    assert report["counts"]["ok"] == 8 and len(list(out.glob("part-*.parquet"))) == 2
    checkpoint = load_checkpoint(tiny_dir)
    cardinality, tokenizer = checkpoint.mimi.cardinality, checkpoint.tokenizer
    manifest = {json.loads(line)["id"]: json.loads(line) for line in (parallel_set / "manifest.jsonl").read_text().splitlines()}
    examples = _examples(out)
    assert sorted(e["id"] for e in examples) == sorted(list(manifest)[:8])
    for example in examples:
        n, end = example["n_frames"], example["source_end_frame"]
        source, target, text = np.array(example["source_codes"]), np.array(example["target_codes"]), np.array(example["text_tokens"])
        assert source.shape == (checkpoint.lm.n_q - checkpoint.lm.dep_q, n) and target.shape == (checkpoint.lm.dep_q, n)
        assert text.shape == (n,)
        # Input EOS: exactly the frame after the last source frame, on every source codebook.
        assert (source[:, end] == cardinality).all()
        assert not (np.delete(source, end, axis=1) == cardinality).any()
        assert (target < cardinality).all()
        # Text EOS once, after the input EOS, on the last frame.
        assert np.flatnonzero(text == EOS).tolist() == [n - 1] and n - 1 > end
        # The text stream spells the translation; a word after padding is announced by EPAD.
        assert tokenizer.decode([t for t in text.tolist() if t > 3]) == example["target_text"]
        word_starts = [i for i, t in enumerate(text.tolist()) if t > 3 and tokenizer.id_to_piece(t).startswith("▁")]
        assert all(text[i - 1] != PAD for i in word_starts) and (text == EPAD).sum() >= 1
        sentences = json.loads(example["sentences"])
        assert [s["translation"] for s in sentences] == [s["translation"] for s in manifest[example["id"]]["sentences"]]
        for i, s in enumerate(sentences):
            assert s["target_start"] >= s["source_start"]  # never before its source sentence starts
            if i:
                assert s["target_start"] >= sentences[i - 1]["target_end"]
        first_word_frame = word_starts[0]
        assert first_word_frame >= round(sentences[0]["target_start"] / FRAME_PERIOD_S) - 1

    # Resume: parts present are not rebuilt.
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    prepare(config)
    assert {p: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")} == stamps
    # A killed run left one part missing: only that one is rebuilt.
    victim, kept = sorted(stamps)
    victim.unlink()
    prepare(config)
    assert victim.is_file() and kept.stat().st_mtime_ns == stamps[kept]

    # Machine shards split the rows between them.
    shard_ids = []
    for i in range(2):
        shard_out = tmp_path / f"shard{i}"
        prepare(PrepareConfig(dataset=str(parallel_set), out=str(shard_out), model=str(tiny_dir), shard=f"{i}/2", limit=2))
        shard_ids.append({e["id"] for e in _examples(shard_out)})
    assert not shard_ids[0] & shard_ids[1] and len(shard_ids[0] | shard_ids[1]) == 4


def test_bad_inputs_are_counted_not_fatal(tiny_dir, parallel_set, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(parallel_set, broken)
    rows = [json.loads(line) for line in (broken / "manifest.jsonl").read_text().splitlines()][:4]
    (broken / "audio" / "garbage.wav").write_bytes(b"RIFF not really")
    rows[0]["audio"] = "audio/garbage.wav"
    rows[1]["sentences"][0]["end"] = 99.0  # beyond the audio
    rows[2]["sentences"] = "not a list"
    (broken / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = prepare(PrepareConfig(dataset=str(broken), out=str(tmp_path / "out"), model=str(tiny_dir), max_seconds=60))
    assert report["counts"] == {"bad_audio": 1, "bad_timestamps": 1, "bad_sentences": 1, "ok": 1, "frames": report["counts"]["frames"]}
    assert len(report["failures"]) == 3
    too_long = prepare(PrepareConfig(dataset=str(parallel_set), out=str(tmp_path / "short"), model=str(tiny_dir), limit=2, max_seconds=1.0))
    assert too_long["counts"].get("too_long") == 2


def test_transcript_only_rows_and_provided_target_audio(tiny_dir, parallel_set, tmp_path):
    """Sentences without times get spans from the transcript over the pauses; a given target
    recording replaces the TTS."""
    from hibiki.audio import read_audio
    from training.segmentation import estimate_spans

    rows = [json.loads(line) for line in (parallel_set / "manifest.jsonl").read_text().splitlines()]
    long_rows = [r for r in rows if len(r["sentences"]) > 1]
    for row in long_rows:
        pcm = read_audio(parallel_set / row["audio"])
        spans = estimate_spans(pcm, [s["text"] for s in row["sentences"]])
        for (start, end), truth in zip(spans, row["sentences"]):
            assert start == pytest.approx(truth["start"], abs=0.1)  # pauses are 0.5 s: starts land on them
            assert truth["start"] < end <= truth["end"] + 0.05

    root = tmp_path / "set"
    shutil.copytree(parallel_set, root)
    target = root / "audio" / "target.wav"
    shutil.copy(root / rows[0]["audio"], target)  # any speech will do as "the target recording"
    edited = []
    for row in long_rows[:2]:
        edited.append(dict(row, sentences=[{"text": s["text"], "translation": s["translation"]} for s in row["sentences"]]))
    edited.append(dict(rows[0], sentences=[dict(rows[0]["sentences"][0], target_audio="audio/target.wav")]))
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in edited))
    report = prepare(PrepareConfig(dataset=str(root), out=str(tmp_path / "out"), model=str(tiny_dir)))
    assert report["counts"]["ok"] == 3, report["failures"]
    examples = {e["id"]: e for e in _examples(tmp_path / "out")}
    for row in long_rows[:2]:
        placed = json.loads(examples[row["id"]]["sentences"])
        assert [p["source_start"] for p in placed] == pytest.approx([s["start"] for s in row["sentences"]], abs=0.1)
    provided = json.loads(examples[rows[0]["id"]]["sentences"])[0]
    assert provided["target_end"] - provided["target_start"] == pytest.approx(len(read_audio(target)) / 24000, abs=0.01)
