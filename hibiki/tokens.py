"""Token ids that every part of the project agrees on, in one leaf module (no project imports).

Kyutai's tokenizers fix the text specials; moshi's LMModel reads -1 as "no token here"
(a zero embedding, no loss), which prepared data and rollouts use for padding.
"""

EPAD, BOS, EOS, PAD = 0, 1, 2, 3  # EPAD (the frame just before a word) is the tokenizer's unk id
SILENT_TEXT_IDS = frozenset({EPAD, BOS, EOS, PAD})  # never shown to users, as moshi's clients do
ZERO_TOKEN = -1  # moshi's LMModel.zero_token_id
