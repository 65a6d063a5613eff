"""`hibiki eval` end to end: datasets in every accepted form, translation, resume, --from-dir."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import datasets
import numpy as np
import pytest
from conftest import HIBIKI_CLI

from eval.dataset import Columns, load_eval_set
from eval.mini_set import HERE as MINI_SET
from hibiki.audio import SAMPLE_RATE, write_wav
from hibiki.dataset_source import DatasetError

MANIFEST = MINI_SET / "manifest.jsonl"


def hibiki_eval(*args, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([*HIBIKI_CLI, "eval", *map(str, args)], capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_shipped_set_holds_short_and_long_form():
    rows = [json.loads(line) for line in MANIFEST.read_text().splitlines()]
    assert {r["sentences"] for r in rows} >= {1, 3, 4}
    eval_set = load_eval_set(MINI_SET)
    items = list(eval_set.items())
    assert len(items) == len(rows) and all(i.reference and i.pcm.size for i in items)
    longest = max(len(i.pcm) for i in items) / SAMPLE_RATE
    assert longest > 5.0  # long-form: several sentences with pauses


def test_datasets_in_every_accepted_form(tmp_path):
    rows = [json.loads(line) for line in MANIFEST.read_text().splitlines()][:3]
    paths = [str(MINI_SET / r["audio"]) for r in rows]
    table = datasets.Dataset.from_dict({"id": [r["id"] for r in rows], "audio": paths,
                                        "translation": [r["reference"].split(". ") for r in rows]})
    # A save_to_disk DatasetDict whose audio is a datasets.Audio feature holding the bytes.
    with_bytes = table.map(lambda row: {"audio": {"bytes": Path(row["audio"]).read_bytes(), "path": row["audio"]}})
    with_bytes = with_bytes.cast_column("audio", datasets.Audio(decode=False))
    datasets.DatasetDict({"test": with_bytes}).save_to_disk(tmp_path / "saved")
    # A folder of parquet files with path strings.
    (tmp_path / "parquet").mkdir()
    table.to_parquet(tmp_path / "parquet" / "test.parquet")
    expected = load_eval_set(MINI_SET, limit=3)
    want = {i.id: i.pcm for i in expected.items()}
    for spec in (tmp_path / "saved", tmp_path / "parquet"):
        eval_set = load_eval_set(spec, split="test", columns=Columns(reference="translation"))
        items = list(eval_set.items())
        assert [i.id for i in items] == list(want)
        assert all(np.array_equal(i.pcm, want[i.id]) for i in items)
        assert items[0].reference == rows[0]["reference"]  # a list of sentences is joined back
    with pytest.raises(DatasetError, match="lacks column.*translation"):
        load_eval_set(MINI_SET, columns=Columns(reference="translation"))
    with pytest.raises(DatasetError, match="no split 'dev'"):
        load_eval_set(tmp_path / "saved", split="dev", columns=Columns(reference="translation"))


def test_eval_translates_scores_reports_and_resumes(tiny_dir, tmp_path):
    out = tmp_path / "run"
    args = ["--model", tiny_dir, "--limit", 3, "--out", out, "--max-tail", 1, "--no-speaker-sim", "--temp-text", 0]
    first = hibiki_eval(*args)
    assert "3 utterance(s) scored (3 translated now, 0 skipped)" in first.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["utterances"] == 3 and summary["rtf"] > 0
    assert summary["text_bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    assert "asr_bleu" in summary and "text_laal_s" in summary
    assert summary["run"]["command"].startswith("hibiki eval --model")
    assert summary["run"]["sampling"]["temp_text"] == 0 and not summary["run"]["sampling"]["greedy"]
    for png in ("quality_latency.png", "latency_distribution.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| n | BLEU | ASR-BLEU |" in (out / "summary.md").read_text()
    rows = (out / "rows.jsonl").read_text().splitlines()
    assert len(rows) == 3

    # Interrupted mid-run: one output and one row lost (and a half-written row line).
    (out / "outputs" / "short-02.wav").unlink()
    kept = [line for line in rows if json.loads(line)["id"] != "short-02"]
    (out / "rows.jsonl").write_text("\n".join(kept) + '\n{"id": "short-0')
    resumed = hibiki_eval(*args)
    assert "3 utterance(s) scored (1 translated now, 0 skipped)" in resumed.stdout
    assert [json.loads(line)["id"] for line in (out / "rows.jsonl").read_text().splitlines()[-1:]] == ["short-02"]
    again = hibiki_eval(*args)
    assert "(0 translated now" in again.stdout
    assert json.loads((out / "summary.json").read_text())["utterances"] == 3

    # Another evaluation into the same directory is refused, not mixed in.
    clash = hibiki_eval("--model", tiny_dir, "--limit", 2, "--out", out, check=False)
    assert clash.returncode == 2 and "holds another evaluation" in clash.stderr


def test_from_dir_scores_another_systems_outputs(tmp_path):
    """Reference English spoken by espeak-ng 0.5 s late stands for a perfect, late system."""
    from training.tts import Espeak, Voice

    tts = Espeak()
    system = tmp_path / "system"
    system.mkdir()
    rows = [json.loads(line) for line in MANIFEST.read_text().splitlines()][:4]
    speech_end = {}
    for row in rows[:3]:  # the fourth has no output at all
        speech = tts.speak(row["reference"], Voice("en-us")).pcm
        pcm = np.concatenate([np.zeros(SAMPLE_RATE // 2, np.float32), speech])
        write_wav(system / f"{row['id']}.wav", pcm)
        (system / f"{row['id']}.txt").write_text(row["reference"] + "\n")
        speech_end[row["id"]] = 0.5 + np.flatnonzero(np.abs(speech) > 0.01)[-1] / SAMPLE_RATE
    (system / "broken.wav").write_bytes(b"not audio")
    out = tmp_path / "scored"
    hibiki_eval("--from-dir", system, "--limit", 4, "--out", out)
    summary = json.loads((out / "summary.json").read_text())
    scored = {r["id"]: r for r in map(json.loads, (out / "rows.jsonl").read_text().splitlines())}
    assert summary["missing_outputs"] == 1 and scored[rows[3]["id"]]["missing_output"]
    perfect = [scored[r["id"]] for r in rows[:3]]
    assert all(r["text_bleu"] == 100.0 for r in perfect)
    assert all(r["asr_bleu"] > 40 for r in perfect)
    for r in perfect:
        assert r["start_offset_s"] == pytest.approx(0.5, abs=0.1)
        assert r["end_offset_s"] == pytest.approx(speech_end[r["id"]] - r["source_s"], abs=0.2)
        assert r["laal_s"] is not None and -1 < r["speaker_sim"] <= 1
    # The missing fourth output drags the corpus scores below the three perfect ones.
    assert 50 < summary["text_bleu"] < 100
    assert summary["asr_bleu_vs_text"] > 40 and "against the model's own text" in (out / "summary.md").read_text()
    assert "rtf" not in summary and "text_laal_s" not in summary
