"""The model used when none is named: the demo checkpoint shipped inside the package.

`training/demo/ship.py` writes it to `hibiki/default_model/` with its model card
(README.md: what it was trained on, what it can translate, its metrics), so every command
runs offline from a fresh clone with no download.
"""

from __future__ import annotations

from pathlib import Path

from hibiki.checkpoint import CONFIG_NAME, CheckpointError

SHIPPED = Path(__file__).parent / "default_model"


def default_model() -> Path:
    if not (SHIPPED / CONFIG_NAME).is_file():
        raise CheckpointError(f"the embedded default model is missing from {SHIPPED} (a package built without its "
                              "data files?): reinstall hibiki, or name a checkpoint or hub repo with --model")
    return SHIPPED
