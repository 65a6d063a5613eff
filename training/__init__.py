"""Training recipes: data preparation, supervised fine-tuning and GRPO latency stage."""
