"""Metric definitions on hand-computed cases, and agreement with independent tools."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eval.bleu import corpus_bleu, normalise, sentence_bleu
from eval.latency import end_offset, laal, start_offset
from hibiki.audio import SAMPLE_RATE

SACREBLEU = Path(sys.executable).parent / "sacrebleu"


def test_laal_hand_cases():
    # One word per second of a 3 s source, as many words as the reference: lag 1 s each.
    assert laal([1.0, 2.0, 3.0], 3.0, 3) == pytest.approx(1.0)
    # tau stops at the first word emitted once the source is over (3.5 >= 3): (1 + (3.5 - 1)) / 2.
    assert laal([1.0, 3.5, 5.0], 3.0, 3) == pytest.approx(1.75)
    # Over-generation: 6 output words for a 3-word reference. LAAL divides |X| by max(|Y|, |Y*|) = 6,
    # so terms are d_i - (i-1) * 0.5 = 0.5 for the first five and 3.5 - 2.5 = 1 for the sixth.
    assert laal([0.5, 1.0, 1.5, 2.0, 2.5, 3.5], 3.0, 3) == pytest.approx((5 * 0.5 + 1.0) / 6)
    # AL's |X|/|Y*| would have rewarded it: terms 0.5, 0, -0.5, -1, -1.5 -> a negative lag.
    # A first word after the source ended: its delay (SimulEval's convention).
    assert laal([4.0, 5.0], 3.0, 2) == pytest.approx(4.0)
    assert laal([], 3.0, 2) is None


def test_offsets():
    assert end_offset([1.0, 3.5, 5.0], 3.0) == pytest.approx(2.0)
    assert end_offset([0.5, 2.5], 3.0) == pytest.approx(-0.5)
    assert end_offset([], 3.0) is None
    assert start_offset([0.7, 1.2]) == pytest.approx(0.7)
    assert start_offset([]) is None


def test_corpus_bleu_matches_the_sacrebleu_cli(tmp_path):
    hyps = ["The cat sat on the mat.", "Hello there", "We are going to the market today."]
    refs = ["The cat is on the mat.", "Hello there friend", "We are going to the market."]
    (tmp_path / "hyp.txt").write_text("\n".join(hyps) + "\n")
    (tmp_path / "ref.txt").write_text("\n".join(refs) + "\n")
    cli = json.loads(subprocess.run([str(SACREBLEU), str(tmp_path / "ref.txt"), "-i", str(tmp_path / "hyp.txt"),
                                     "-m", "bleu", "-w", "2"], capture_output=True, text=True, check=True).stdout)
    ours = corpus_bleu(hyps, refs)
    assert ours.score == pytest.approx(cli["score"], abs=0.01)
    assert ours.signature == cli["signature"]
    assert 0 < ours.score < 100
    assert corpus_bleu(refs, refs).score == 100.0


def test_sentence_bleu_and_whisper_normaliser():
    assert sentence_bleu("The cat is on the mat.", "The cat is on the mat.") == 100.0
    assert sentence_bleu("A dog.", "The cat is on the mat.") < 10
    assert normalise("Mr. Smith doesn't have 2 colours, it's twenty-one!") == "mister smith does not have 2 colors it is 21"
    # ASR style differences vanish after normalisation.
    assert normalise("We'll meet at 8 o'clock.") == normalise("we will meet at eight o'clock")


@pytest.fixture(scope="module")
def espeak():
    from training.tts import Espeak

    return Espeak()


def test_whisper_transcribes_espeak_with_voiced_word_times(espeak):
    from eval.asr import Transcriber
    from training.tts import Voice

    lead = 0.6
    speech = espeak.speak("Where is the station?", Voice("en-us")).pcm
    pcm = np.concatenate([np.zeros(round(lead * SAMPLE_RATE), np.float32), speech])
    transcript = Transcriber().transcribe(pcm)
    assert normalise(transcript.text) == "where is the station"
    # The first word starts when the voice does (Whisper alone would say 0.0), the last ends with it.
    assert transcript.words[0].start == pytest.approx(lead, abs=0.08)
    voiced_end = lead + np.flatnonzero(np.abs(speech) > 0.01)[-1] / SAMPLE_RATE
    assert transcript.words[-1].end == pytest.approx(voiced_end, abs=0.15)
    assert all(a.end <= b.start + 0.05 for a, b in zip(transcript.words, transcript.words[1:]))


def test_speaker_similarity_prefers_the_same_voice(espeak):
    from eval.speaker import SpeakerSimilarity
    from training.tts import Voice

    similarity = SpeakerSimilarity()
    a = espeak.speak("The black cat eats a red apple. Where is the station?", Voice("en-us")).pcm
    same = espeak.speak("My sister lives in Paris and works in a bank.", Voice("en-us")).pcm
    other = espeak.speak("My sister lives in Paris and works in a bank.", Voice("en-us", "f3", 160, 80)).pcm
    assert similarity.similarity(a, same) > similarity.similarity(a, other) + 0.1
    assert similarity.similarity(a, np.zeros(SAMPLE_RATE, np.float32)) is None
