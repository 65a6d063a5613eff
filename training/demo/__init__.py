"""The demo French->English language pair: generated text, espeak-ng speech, a small codec."""
