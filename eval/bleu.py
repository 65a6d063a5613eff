"""BLEU as the Hibiki papers report it: sacreBLEU corpus BLEU, with its signature.

- Text BLEU scores the inner-monologue text as written (sacreBLEU defaults: 13a
  tokenisation, case-sensitive), so it matches `sacrebleu REF < HYP` on the same lines.
- ASR-BLEU scores the Whisper transcript of the output speech; transcript and reference
  both go through Whisper's English text normaliser first (lower case, no punctuation,
  spelled-out numbers and contractions unified), since ASR output style is not the
  model's doing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from sacrebleu.metrics import BLEU
from whisper_normalizer.english import EnglishTextNormalizer


@dataclass(frozen=True)
class BleuScore:
    score: float
    signature: str


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> BleuScore:
    bleu = BLEU()
    result = bleu.corpus_score(list(hypotheses), [list(references)])
    return BleuScore(round(result.score, 2), str(bleu.get_signature()))


def sentence_bleu(hypothesis: str, reference: str) -> float:
    """Per-utterance BLEU with exponential smoothing (sacreBLEU's sentence default), for plots."""
    return round(BLEU(effective_order=True).sentence_score(hypothesis, [reference]).score, 2)


@lru_cache(maxsize=1)
def _normaliser() -> EnglishTextNormalizer:
    return EnglishTextNormalizer()


def normalise(text: str) -> str:
    """Whisper's English normaliser, the one ASR-BLEU applies to transcripts and references."""
    return _normaliser()(text)
