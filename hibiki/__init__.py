"""Hibiki: simultaneous speech-to-speech translation on Kyutai's Moshi architecture.

The core package: Kyutai-format checkpoints (`checkpoint`), the batched streaming engine
(`engine`), file translation (`file_translation`) and the `hibiki` CLI (`cli`).
"""

import os

import torch

# moshi wraps a few small functions in torch.compile; on CPU that costs seconds of
# compilation per process and makes each 80 ms step slower, so it stays off there.
if not torch.cuda.is_available():
    os.environ.setdefault("NO_TORCH_COMPILE", "1")
