"""The GRPO stage (Hibiki-Zero): latency lowered by a BLEU-only reward at source checkpoints."""
