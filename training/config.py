"""YAML configs over typed dataclasses, overridable from the command line (torchtune style).

    python -m training.prepare training/configs/prepare_demo.yaml workers=4 alignment.delay_max_frac=0.3

Every key is checked against the dataclass: a typo or a wrong type is an error naming
the key, not a silently ignored setting.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

T = TypeVar("T")
R = TypeVar("R")


class ConfigError(ValueError):
    pass


def load_config(schema: type[T], path: str | Path | None, overrides: list[str]) -> T:
    """schema defaults <- YAML file <- `key=value` overrides (dotted keys for nested sections)."""
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"no config file {path!r}: the first argument, when it has no '=', is a YAML config; "
                          "the rest are key=value overrides")
    try:
        config = OmegaConf.structured(schema)
        if path is not None:
            config = OmegaConf.merge(config, OmegaConf.load(path))
        bad = [o for o in overrides if "=" not in o]
        if bad:
            raise ConfigError(f"overrides must be key=value, got {bad}")
        config = OmegaConf.merge(config, OmegaConf.from_dotlist(overrides))
        return OmegaConf.to_object(config)
    except (OmegaConfBaseException, yaml.YAMLError) as exc:
        raise ConfigError(f"bad configuration ({path or 'defaults'}): {exc}") from exc


def config_from_argv(schema: type[T], description: str, argv: list[str] | None = None) -> T:
    """`script [CONFIG.yaml] [key=value ...]`; `--help` lists every key with its default."""
    argv = sys.argv[1:] if argv is None else argv
    if {"-h", "--help"} & set(argv):
        print(f"{description}\n\nusage: [CONFIG.yaml] [key=value ...]\n\nkeys and defaults:")
        print(OmegaConf.to_yaml(OmegaConf.structured(schema)))
        raise SystemExit(0)
    path = argv[0] if argv and "=" not in argv[0] else None
    try:
        return load_config(schema, path, argv[1:] if path else argv)
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None


def run_script(schema: type[T], doc: str, run: Callable[[T], R],
               input_errors: tuple[type[Exception], ...] = (FileNotFoundError, ValueError),
               argv: list[str] | None = None) -> tuple[T, R]:
    """A training script's `main()`: logging, the config from argv, then `run(config)`.

    The errors bad input raises (a missing file, a wrong value) end the script with their
    one-line message instead of a traceback; anything else is a bug and keeps its traceback.
    `doc`'s first paragraph is the `--help` description; `argv` defaults to the process's.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = config_from_argv(schema, doc.split("\n\n")[0], argv)
    try:
        return config, run(config)
    except input_errors as exc:
        raise SystemExit(f"error: {exc}") from None
