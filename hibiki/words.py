"""Words and their times from the text stream (the inner monologue).

The text stream holds one token per 80 ms frame, mostly padding. A word starts at the
frame of a token whose SentencePiece piece begins with '▁' (the word boundary marker) and
ends one frame after its last token. These are the text-stream timestamps the service
reports and that latency metrics (LAAL, End Offset) can use when no ASR is at hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from sentencepiece import SentencePieceProcessor

from hibiki.audio import FRAME_PERIOD_S
from hibiki.tokens import SILENT_TEXT_IDS


@dataclass(frozen=True)
class Word:
    text: str
    start: float  # seconds of model time: output frame index * 80 ms
    end: float

    def as_dict(self) -> dict:
        return asdict(self)


def words_from_tokens(tokenizer: SentencePieceProcessor, tokens: Sequence[int]) -> list[Word]:
    """Groups the text tokens of a stream (one per output frame) into timed words."""
    spans: list[tuple[int, int, list[int]]] = []  # first frame, last frame, token ids
    for frame, token in enumerate(tokens):
        if token < 0 or token in SILENT_TEXT_IDS:
            continue
        if not spans or tokenizer.id_to_piece(token).startswith("▁"):
            spans.append((frame, frame, [token]))
        else:  # a continuation piece: same word, even across padding frames
            first, _, ids = spans[-1]
            spans[-1] = (first, frame, ids + [token])
    words = []
    for first, last, ids in spans:
        text = tokenizer.decode(ids).strip()
        if text:
            words.append(Word(text, round(first * FRAME_PERIOD_S, 3), round((last + 1) * FRAME_PERIOD_S, 3)))
    return words
