"""How a stream picks its tokens: the one settings type of the engine, the service, the CLIs and GRPO.

A leaf: it imports nothing of the project, so configs and request parsers can use it
without loading torch or moshi. Field names are moshi's `LMGen` keywords, except that
moshi's `use_sampling` is spelled `greedy` (its negation) everywhere in this project:
the CLI's `--greedy`, the `/v1/stream` option and GRPO's `sampling.greedy`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass
class Sampling:
    """Temperatures and top-k, audio then text; moshi's conventions: top-k 0 is no limit,
    temperature 0 or `greedy` is the argmax. `cfg_coef` is voice-transfer guidance (1: none)."""

    temp: float = 0.8
    top_k: int = 250
    temp_text: float = 0.7
    top_k_text: int = 25
    greedy: bool = False
    cfg_coef: float = 1.0

    @classmethod
    def from_lm_gen_config(cls, lm_gen_config: Mapping[str, Any], **overrides: Any) -> Sampling:
        """A checkpoint's `lm_gen_config` (moshi's keys), then overrides (None: keep)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown sampling settings {sorted(unknown)}; accepted: {sorted(known)}")
        values = {k: v for k, v in lm_gen_config.items() if k in known}
        if "use_sampling" in lm_gen_config:
            values["greedy"] = not lm_gen_config["use_sampling"]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def check(self) -> None:
        """Raises ValueError for settings no stream can have."""
        values = (self.temp, self.temp_text, self.top_k, self.top_k_text)
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise ValueError(f"temperatures and top-k must be finite numbers >= 0, got {self}")
        if not (math.isfinite(self.cfg_coef) and self.cfg_coef > 0):
            raise ValueError(f"cfg_coef must be a finite number > 0 (1: no guidance), got {self.cfg_coef}")

    def lm_gen_kwargs(self) -> dict[str, Any]:
        """The settings as moshi's `LMGen` keywords."""
        return {"use_sampling": not self.greedy, "temp": self.temp, "temp_text": self.temp_text,
                "top_k": self.top_k, "top_k_text": self.top_k_text, "cfg_coef": self.cfg_coef}

