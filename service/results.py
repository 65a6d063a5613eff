"""The summary a client gets when a translation is complete (websocket final message, file endpoint)."""

from __future__ import annotations

from hibiki.audio import FRAME_PERIOD_S, SAMPLE_RATE
from hibiki.engine import BatchedTranslator
from hibiki.words import words_from_tokens


def translation_summary(translator: BatchedTranslator, text_tokens: list[int], input_samples: int) -> dict:
    """Full text, word times and latency figures, all in seconds of model time.

    Output frame i covers [i * 80 ms, (i + 1) * 80 ms) of the input's timeline, so word times
    compare directly with the source audio: `end_offset_s` is how long after the input
    ended the last translated word ends (text stream timestamps).
    """
    words = words_from_tokens(translator.tokenizer, text_tokens)
    input_s = input_samples / SAMPLE_RATE
    return {
        "text": translator.decode_text(text_tokens),
        "words": [w.as_dict() for w in words],
        "timing": {
            "input_s": round(input_s, 3),
            "output_s": round(len(text_tokens) * FRAME_PERIOD_S, 3),
            "first_word_s": words[0].start if words else None,
            "end_offset_s": round(words[-1].end - input_s, 3) if words else None,
        },
    }
