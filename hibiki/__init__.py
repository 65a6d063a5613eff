"""Hibiki: simultaneous speech-to-speech translation on Kyutai's Moshi architecture.

The core package: Kyutai-format checkpoints (`checkpoint`), the batched streaming engine
(`engine`), file translation (`file_translation`) and the `hibiki` CLI (`cli`).
"""

import os

# moshi wraps a few small functions in torch.compile when it is imported; on a CPU that
# costs seconds of compilation per process and makes each 80 ms step slower, so it stays
# off where no NVIDIA driver is loaded. Checked without importing torch, so that the
# light modules (audio, tokens, sampling, words) stay light.
if not os.path.exists("/proc/driver/nvidia/version"):
    os.environ.setdefault("NO_TORCH_COMPILE", "1")
