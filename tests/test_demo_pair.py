"""The demo pair's building blocks: sentence pairs, splits, the speech corpus, the codec."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from training.demo.sentences import SentenceGenerator, held_out, realised_combos, split_of


def test_sentence_pairs_cover_reordering_constructions_and_split_by_content():
    generator = SentenceGenerator(seed=3)
    pairs = [p for p in (generator.pair() for _ in range(1500)) if p is not None]
    assert len(pairs) > 1400
    assert all(p.fr[0].isupper() and p.en[0].isupper() and p.fr[-1] in ".?" and p.en[-1] in ".?" for p in pairs)
    french = " ".join(p.fr for p in pairs)
    english = " ".join(p.en for p in pairs)
    for construction in (" ne ", " pas ", "-t-", " l'", " a ", " ont ", "rai "):  # negation, inversion, pronoun, past, future
        assert construction in french, construction
    for construction in (" not ", "Did ", " will ", " it"):
        assert construction in english, construction
    assert any(p.fr.endswith("?") == p.en.endswith("?") for p in pairs)
    assert all(p.fr.endswith("?") == p.en.endswith("?") for p in pairs)
    # Adjectives follow the noun in French where English puts them first.
    assert "The black" in english or "the black" in english
    assert " noir" in french or " noire" in french

    splits = {split_of(p) for p in pairs}
    assert splits == {"train", "valid", "test"}
    train = {p.fr for p in pairs if split_of(p) == "train"}
    test = {p.fr for p in pairs if split_of(p) == "test"}
    assert not train & test
    held = [p for p in pairs if any(held_out(c) for c in p.combos)]
    assert held and all(split_of(p) == "test" for p in held)
    train_combos = {c for p in pairs if split_of(p) == "train" for c in p.combos}
    assert not any(held_out(c) for c in train_combos)  # the test split holds combinations never trained on
    assert "Qu'est-ce que" in french and "Que est" not in french and " que un" not in french  # elided


def test_only_spoken_noun_phrases_decide_the_split():
    """An object said as a pronoun or asked for by the question word is not heard: its
    adjective-noun pair must not send the sentence to test (the same words also go to train)."""
    generator = SentenceGenerator(seed=5)
    frame = next(f for f in iter(generator.frame, None) if f["kind"] == "transitive" and f["object"].adjective)
    combo = f"{frame['object'].adjective[0]}|{frame['object'].noun[0]}"
    assert combo in realised_combos({**frame, "object_pronoun": False, "question": None})
    assert combo not in realised_combos({**frame, "object_pronoun": True, "question": None})
    assert combo not in realised_combos({**frame, "object_pronoun": False, "question": "wad"})


def test_corpus_rows_serve_prepare_eval_and_codec(tmp_path):
    from training.demo.corpus import CorpusConfig, build

    out = tmp_path / "corpus"
    summary = build(CorpusConfig(out=str(out), hours=0.05, sentences_per_chunk=40, workers=1))
    assert summary["train"]["utterances"] > 0
    rows = [json.loads(line) for line in (out / "train" / "manifest.jsonl").read_text().splitlines()]
    assert {len(r["sentences"]) for r in rows} <= {1, 2, 3, 4} and max(len(r["sentences"]) for r in rows) > 1
    for row in rows:
        assert (out / "train" / row["audio"]).is_file() and (out / "train" / row["target_audio"]).is_file()
        assert row["reference"] == " ".join(s["translation"] for s in row["sentences"])
        starts = [s["start"] for s in row["sentences"]]
        assert starts == sorted(starts) and row["sentences"][-1]["end"] <= row["source_s"] + 1e-3
    # A rebuild finds every chunk done and changes nothing.
    before = (out / "train" / "manifest.jsonl").read_text()
    build(CorpusConfig(out=str(out), hours=0.05, sentences_per_chunk=40, workers=1))
    assert (out / "train" / "manifest.jsonl").read_text() == before
    # The shipped codec's ceilings on these rows: Whisper hears espeak's English, less well
    # through the codec.
    from hibiki.default_model import SHIPPED
    from training.demo.codec_eval import evaluate

    figures = evaluate(SHIPPED, out, "test", limit=3)
    assert figures["utterances"] == min(3, summary["test"]["utterances"]) > 0
    assert figures["asr_bleu_original"] > 20 and figures["asr_bleu_codec"] > 30  # a broken codec scores ~0
    assert figures["wer_original"] < 60 and figures["wer_codec"] < 60 and 0 < figures["streaming_rtf_one_thread"] < 5


def test_corpus_refuses_voices_espeak_would_replace_silently():
    import pytest

    from training.demo.corpus import CorpusConfig, check_voices

    check_voices(CorpusConfig(french_variants=["", "m3", "f2"]))
    for bad in (["m3", "zz9"], []):
        with pytest.raises(ValueError, match="french_variants must list espeak-ng variants"):
            check_voices(CorpusConfig(french_variants=bad))


def _tone_corpus(root):
    """A corpus of two tones, French side 220 Hz, English side 440 Hz."""
    from hibiki.audio import SAMPLE_RATE, write_wav

    corpus = root / "corpus" / "train"
    (corpus / "audio").mkdir(parents=True)
    t = np.arange(SAMPLE_RATE * 3) / SAMPLE_RATE
    write_wav(corpus / "audio" / "a.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
    write_wav(corpus / "audio" / "b.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    (corpus / "manifest.jsonl").write_text(json.dumps({"audio": "audio/a.wav", "target_audio": "audio/b.wav"}) + "\n")
    return root / "corpus"


def _tiny_codec_config(corpus, out, **overrides):
    from training.demo.codec import CodecConfig

    return CodecConfig(corpus=str(corpus), out=str(out), dimension=32, n_filters=4, transformer_layers=1, n_q=8,
                       bins=64, steps=4, batch_size=2, segment_s=0.48, log_every=1, save_every=2, **overrides)


def test_codec_trains_saves_in_mimi_format_and_resumes(tmp_path):
    from moshi.models import loaders

    from hibiki.audio import FRAME_SIZE
    from hibiki.checkpoint import MIMI_CONFIG_NAME as CONFIG_NAME
    from hibiki.checkpoint import MIMI_NAME as WEIGHTS_NAME
    from hibiki.checkpoint import CheckpointError, load_mimi
    from training.demo.codec import train

    config = _tiny_codec_config(_tone_corpus(tmp_path), tmp_path / "codec")
    first = train(config)
    stft = [h["stft"] for h in first["history"]]
    assert stft[-1] < 0.96 * stft[0]  # it learns: 4 steps on two tones take off over 4 %
    spec = json.loads((tmp_path / "codec" / CONFIG_NAME).read_text())
    mimi = loaders.get_mimi(str(tmp_path / "codec" / WEIGHTS_NAME), spec)  # moshi's own loader
    assert mimi.frame_rate == 12.5 and mimi.sample_rate == 24000
    with torch.no_grad():
        codes = load_mimi(tmp_path / "codec").encode(torch.zeros(1, 1, FRAME_SIZE * 2))
    assert codes.shape[-1] == 2
    with pytest.raises(CheckpointError, match="lacks mimi_config.json, mimi.safetensors"):
        load_mimi(tmp_path)
    config.steps = 6
    resumed = train(config)
    assert resumed["history"][-1]["step"] == 6 and resumed["history"][:len(first["history"])] == first["history"]


def test_codec_decoder_only_keeps_the_codes_and_changes_the_decoder(tmp_path):
    from hibiki.audio import FRAME_SIZE
    from hibiki.checkpoint import load_mimi
    from training.demo.codec import train

    corpus = _tone_corpus(tmp_path)
    train(_tiny_codec_config(corpus, tmp_path / "codec"))
    with pytest.raises(ValueError, match="init="):
        train(_tiny_codec_config(corpus, tmp_path / "no_init", decoder_only=True))
    train(_tiny_codec_config(corpus, tmp_path / "decoder", init=str(tmp_path / "codec"), decoder_only=True,
                             audio_columns=["target_audio"], lr=1e-2))
    before, after = load_mimi(tmp_path / "codec"), load_mimi(tmp_path / "decoder")
    old, new = before.state_dict(), after.state_dict()
    changed = {k for k in old if not torch.equal(old[k], new[k])}
    assert changed and all(k.startswith(("decoder", "upsample", "quantizer.")) for k in changed), changed
    assert all("output_proj" in k for k in changed if k.startswith("quantizer."))
    t = np.arange(FRAME_SIZE * 4) / 24000
    x = torch.from_numpy((0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32))[None, None]
    with torch.no_grad():
        assert torch.equal(before.encode(x), after.encode(x))
        assert not torch.allclose(before.decode(before.encode(x)), after.decode(after.encode(x)))


def test_base_checkpoint_wraps_the_codec_with_a_corpus_tokenizer(tmp_path):
    from moshi.models import loaders

    from hibiki.checkpoint import load_checkpoint, write_mimi
    from hibiki.presets import mimi_config
    from training.demo.base import BaseConfig, build_base
    from training.demo.sentences import SentenceGenerator

    spec = mimi_config(dimension=32, n_filters=4, layers=1, n_q=4, bins=64)
    write_mimi(tmp_path / "codec", loaders.get_mimi(None, json.loads(json.dumps(spec)), num_codebooks=4), spec)
    generator = SentenceGenerator(seed=1)
    pairs = [p for p in (generator.pair() for _ in range(300)) if p is not None]
    rows = [{"sentences": [{"translation": p.en, "text": p.fr}]} for p in pairs]
    (tmp_path / "corpus" / "train").mkdir(parents=True)
    (tmp_path / "corpus" / "train" / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = build_base(BaseConfig(corpus=str(tmp_path / "corpus"), codec=str(tmp_path / "codec"), out=str(tmp_path / "base"),
                                vocab=400, dim=32, layers=1, heads=2, dep_dim=16, context=50))
    checkpoint = load_checkpoint(out)  # the path a downloaded Kyutai checkpoint takes
    assert checkpoint.lm.dep_q == 4 and checkpoint.lm.n_q == 8
    assert checkpoint.mimi.num_codebooks == 4
    sentence = pairs[0].en
    pieces = checkpoint.tokenizer.encode(sentence)
    assert checkpoint.tokenizer.decode(pieces) == sentence
    assert len(pieces) < len(sentence) / 2  # whole words of the corpus, not bytes


def test_report_card_tabulates_the_stage_outputs(tmp_path):
    from training.demo.report_card import report

    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "summary.json").write_text(json.dumps({"train": {"utterances": 975, "hours": 1.66}}))
    (tmp_path / "recipe.json").write_text(json.dumps({"gpu": 0, "hours": 2}))
    (tmp_path / "stages").mkdir()
    for stage, seconds in (("corpus", 600), ("sft", 3000)):
        (tmp_path / "stages" / f"{stage}.done").write_text(json.dumps({"stage": stage, "seconds": seconds, "where": "CPU"}))
    for name, bleu, laal in (("sft", 41.5, 3.2), ("grpo", 41.0, 2.4)):
        (tmp_path / "eval" / name).mkdir(parents=True)
        summary = {"utterances": 109, "text_bleu": bleu, "asr_bleu": 30.1, "laal_s": laal, "end_offset_s": 1.0,
                   "rtf": 0.5, "run": {"command": f"hibiki eval --model {name} --out x"}}
        (tmp_path / "eval" / name / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "codec").mkdir()
    (tmp_path / "codec" / "eval.json").write_text(json.dumps(
        {"wer_original": 19.9, "wer_codec": 26.4, "asr_bleu_original": 69.6, "asr_bleu_codec": 57.1,
         "stft_distance_en": 1.01, "stft_distance_fr": 1.18, "streaming_rtf_one_thread": 0.23}))
    for phase, steps in (("sft_text", 40), ("sft", 20), ("sft_spread", 60)):
        history = [{"step": 20 * i, "text_loss": 2.0 / i, "audio_loss": 5.0 / i} for i in range(1, steps // 20 + 1)]
        history[-1].update(val_text_loss=1.25, val_text_loss_other_source=1.75)
        (tmp_path / phase).mkdir()
        (tmp_path / phase / "train_summary.json").write_text(json.dumps(
            {"steps": steps, "wall_s": 600, "frames_per_s": 500.0, "history": history}))
    (tmp_path / "grpo").mkdir()  # a model too young to write words: no latency to report
    (tmp_path / "grpo" / "grpo_summary.json").write_text(json.dumps({"wall_s": 120, "history": [
        {"step": 0, "val_bleu": 0.0, "val_laal_s": None}, {"step": 4, "val_bleu": 0.5, "val_laal_s": None}]}))
    text = report(tmp_path).read_text()
    assert "- GRPO: 1 steps, 2 min; validation BLEU 0.00 -> 0.50, LAAL none -> none s" in text
    assert "- supervised (text only): 40 steps, 10 min, 500 frames/s, final valid text loss 1.250 (1.750 with" in text
    assert "- supervised (text + audio): 20 steps" in text
    assert "- supervised (text + audio, lags drawn in [1, 2] s): 60 steps" in text
    assert (tmp_path / "report_training.png").stat().st_size > 1000
    assert "| sft | 109 | 41.5 | 30.1 | 3.2 | 1.0 |" in text and "| grpo | 109 | 41.0 |" in text
    assert "`hibiki eval --model grpo --out x`" in text
    assert "| corpus | 10.0 | CPU |" in text and "| train | 975 | 1.66 |" in text
    assert (tmp_path / "report_quality_latency.png").stat().st_size > 1000
    assert "| 19.9 | 26.4 | 69.6 | 57.1 | 1.01 | 1.18 | 0.23 |" in text


def test_ship_writes_a_half_precision_default_model_with_its_card(tiny_dir, tmp_path):
    from hibiki.checkpoint import load_checkpoint
    from training.demo.base import LM_GEN_CONFIG
    from training.demo.ship import default_checkpoint, ship

    out = tmp_path / "run"
    (out / "sft").mkdir(parents=True)
    (out / "sft" / "latest.json").write_text(json.dumps({"step": 8, "checkpoint": str(tiny_dir)}))
    (out / "corpus" / "train").mkdir(parents=True)
    rows = [{"id": "a", "voice": "fr+m3"}, {"id": "b", "voice": "fr"}, {"id": "c", "voice": "fr+m3"}]
    (out / "corpus" / "train" / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (out / "eval" / "sft").mkdir(parents=True)
    summary = {"utterances": 100, "text_bleu": 42.5, "asr_bleu": 31.0, "laal_s": 2.1, "run": {"command": "hibiki eval --limit 100"}}
    (out / "eval" / "sft" / "summary.json").write_text(json.dumps(summary))
    assert default_checkpoint(out) == tiny_dir  # no GRPO stage: the supervised one
    (out / "sft_spread").mkdir()
    (out / "sft_spread" / "latest.json").write_text(json.dumps({"step": 4, "checkpoint": str(tmp_path / "spread")}))
    assert default_checkpoint(out) == tmp_path / "spread"  # the spread-lag phase comes after
    (out / "sft_spread" / "latest.json").unlink()

    dest = ship(out, default_checkpoint(out), tmp_path / "default_model")
    original, shipped = load_checkpoint(tiny_dir), load_checkpoint(dest)
    on_disk = (dest / "model.safetensors").stat().st_size
    assert on_disk < 0.6 * (tiny_dir / "model.safetensors").stat().st_size  # float16 on disk
    for module in ("lm", "mimi"):
        a, b = getattr(original, module).state_dict(), getattr(shipped, module).state_dict()
        assert a.keys() == b.keys()
        for key in a:
            assert b[key].dtype == a[key].dtype  # loaded back in the model's precision
            torch.testing.assert_close(b[key].float(), a[key].float().half().float(), atol=1e-3, rtol=1e-3)
    assert shipped.info.lm_gen_config == LM_GEN_CONFIG  # the demo's sampling, whatever the checkpoint's
    card = (dest / "README.md").read_text()
    assert "espeak-ng (2 voices: fr, fr+m3; drawn" in card
    assert "| sft | 100 | 42.5 | 31.0 | 2.1 |" in card and "`hibiki eval --limit 100`" in card

    # Trained on a second corpus too and evaluated outside the recipe's folder: the card says so.
    more = tmp_path / "corpus2"
    (more / "train").mkdir(parents=True)
    (more / "train" / "manifest.jsonl").write_text(json.dumps({"id": "d", "voice": "fr+f2"}) + "\n")
    (out / "corpus" / "summary.json").write_text(json.dumps({"train": {"utterances": 10, "hours": 1.5}}))
    (more / "summary.json").write_text(json.dumps({"train": {"utterances": 5, "hours": 0.25}}))
    (tmp_path / "eval_best").mkdir()
    (tmp_path / "eval_best" / "summary.json").write_text(json.dumps(dict(summary, text_bleu=44.0)))
    ship(out, tiny_dir, dest, corpora=[out / "corpus", more], eval_dirs={"best": tmp_path / "eval_best"})
    card = (dest / "README.md").read_text()
    assert "espeak-ng (3 voices: fr, fr+f2, fr+m3; drawn" in card
    assert "train 15 utterances (1.75 h of French), from 2 corpora" in card
    assert "| best | 100 | 44.0 |" in card and "| sft |" not in card
    with pytest.raises(FileNotFoundError, match="'missing'"):
        ship(out, tiny_dir, dest, eval_dirs={"missing": tmp_path / "nowhere"})
    assert (dest / "README.md").read_text() == card  # refused before anything was overwritten

    # Continued from the model just shipped, on a third corpus, into the same directory: its provenance
    # (data in config.json, read before it is overwritten) keeps what the earlier model saw, twice chained.
    third = tmp_path / "corpus3"
    (third / "train").mkdir(parents=True)
    (third / "train" / "manifest.jsonl").write_text(json.dumps({"id": "e", "voice": "fr"}) + "\n")
    (third / "summary.json").write_text(json.dumps({"train": {"utterances": 7, "hours": 0.5}}))
    for _ in range(2):
        ship(out, tiny_dir, dest, corpora=[third], continued_from=dest)
    record = load_checkpoint(dest).info.model_id["provenance"]
    chain = [record, record["started_from"], record["started_from"]["started_from"]]
    assert [r["splits"]["train"]["utterances"] for r in chain] == [7, 7, 15]
    assert chain[2]["corpora"] == [str(out / "corpus"), str(more)] and chain[2]["started_from"] is None
    assert chain[1]["directory"] == str(dest) and record["voices"] == ["fr", "fr+f2", "fr+m3"]
    card = (dest / "README.md").read_text()
    assert "espeak-ng (3 voices: fr, fr+f2, fr+m3; drawn" in card and card.count("that one started from") == 1
    with pytest.raises(FileNotFoundError, match="holds no config.json"):
        ship(out, tiny_dir, dest, continued_from=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="no model_id.provenance"):
        ship(out, tiny_dir, dest, continued_from=tiny_dir)
