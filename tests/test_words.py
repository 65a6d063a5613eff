"""Word times from the text stream: one token per 80 ms frame, padding in between."""

from __future__ import annotations

from hibiki.checkpoint import load_checkpoint
from hibiki.tokens import EOS, EPAD, PAD
from hibiki.words import Word, words_from_tokens


def test_words_start_at_their_first_piece_and_end_after_their_last(tiny_dir):
    tokenizer = load_checkpoint(tiny_dir).tokenizer
    bonjour, le, monde = (tokenizer.encode(w) for w in ("bonjour", "le", "monde"))
    assert len(bonjour) == 3 and len(monde) > 1  # several pieces per word: continuations are exercised
    # frames: PAD EPAD b on PAD jour EPAD le PAD PAD ▁ mo nde EOS, then -1 (not generated yet)
    tokens = [PAD, EPAD, bonjour[0], bonjour[1], PAD, bonjour[2], EPAD, *le, PAD, PAD, *monde, EOS, -1]
    words = words_from_tokens(tokenizer, tokens)
    start_monde = 10
    assert words == [
        Word("bonjour", 0.16, 0.48),  # frames 2..5 -> [0.16 s, 0.48 s): the padding inside the word is kept
        Word("le", 0.56, 0.64),
        Word("monde", round(start_monde * 0.08, 3), round((start_monde + len(monde)) * 0.08, 3)),
    ]
    assert words_from_tokens(tokenizer, [PAD, EPAD, EOS]) == []
