"""The training stages as `hibiki` subcommands: `hibiki prepare|sft|grpo [CONFIG.yaml] [key=value ...]`.

Each runs the stage's `main` (the same as `python -m training.<stage>`, which `accelerate
launch` and `torchrun` start on several GPUs); the stage, not click, reads the arguments,
so `--help` lists every key with its default. Registered through the `hibiki.commands`
entry points (pyproject.toml); the stage modules load only when a command runs, so
`hibiki --help` stays fast.
"""

from __future__ import annotations

import typer

# The stage parses its own arguments, `--help` included (see `hibiki.cli`'s plugin loader).
STAGE_SETTINGS = {"context_settings": {"ignore_unknown_options": True, "allow_extra_args": True,
                                       "help_option_names": []},
                  "options_metavar": "[CONFIG.yaml] [key=value ...] [--help]"}


def prepare(ctx: typer.Context) -> None:
    """Training data: align, speak and encode a sentence-level speech dataset (training.prepare)."""
    from training.prepare import main

    main(ctx.args)


def sft(ctx: typer.Context) -> None:
    """Supervised stage: multistream cross-entropy from a base checkpoint (training.sft)."""
    from training.sft import main

    main(ctx.args)


def grpo(ctx: typer.Context) -> None:
    """GRPO stage: lower a supervised checkpoint's latency with a BLEU reward (training.grpo.train)."""
    from training.grpo.train import main

    main(ctx.args)


for _command in (prepare, sft, grpo):
    _command.command_settings = STAGE_SETTINGS  # type: ignore[attr-defined]
