"""Evaluation: BLEU, ASR-BLEU, latency (LAAL, End Offset) and speaker similarity."""
