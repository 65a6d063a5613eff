"""The model used when none is named: the embedded demo checkpoint shipped in the package.

Until the trained demo checkpoint ships in `hibiki/default_model/`, a random-weight
placeholder of the same size class is built once into the cache, so every command runs
offline from a fresh clone with the same command line it will have then.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from hibiki.checkpoint import CONFIG_NAME
from hibiki.presets import build_random_checkpoint

logger = logging.getLogger(__name__)

SHIPPED = Path(__file__).parent / "default_model"
PLACEHOLDER_PRESET = "small"


def cache_dir() -> Path:
    return Path(os.environ.get("HIBIKI_CACHE", Path.home() / ".cache" / "hibiki"))


def default_model() -> Path:
    if (SHIPPED / CONFIG_NAME).is_file():
        return SHIPPED
    placeholder = cache_dir() / f"placeholder-{PLACEHOLDER_PRESET}"
    if not (placeholder / CONFIG_NAME).is_file():
        logger.warning("no trained default model ships yet: building a random-weight placeholder "
                       "(preset %r) in %s; its output is noise, not a translation", PLACEHOLDER_PRESET, placeholder)
        build_random_checkpoint(placeholder, PLACEHOLDER_PRESET)
    return placeholder
