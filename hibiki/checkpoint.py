"""Kyutai-format checkpoints: one loader for hub repo ids and local directories, one writer.

A checkpoint is a directory (or hub repo) holding `config.json` (LMModel kwargs plus
`model_type`, `lm_gen_config` and the file names `moshi_name`, `mimi_name`,
`mimi_config_name`, `tokenizer_name`), the LM safetensors, the Mimi safetensors (and its
config when it is not Kyutai's standard Mimi) and a SentencePiece model. Loading always goes
through moshi's own `CheckpointInfo`, so whatever loads here loads in moshi's tools and the
other way round; this module only adds the checks that turn moshi's asserts and
`load_state_dict` tracebacks into errors a user can act on.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sentencepiece
import torch
from huggingface_hub import hf_hub_download
from moshi.models import LMModel, MimiModel, loaders
from safetensors import safe_open
from safetensors.torch import save_file

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
LM_NAME = "model.safetensors"
MIMI_NAME = "mimi.safetensors"
MIMI_CONFIG_NAME = "mimi_config.json"
TOKENIZER_NAME = "tokenizer.model"

# config.json keys that name files, with the default moshi assumes when a key is absent.
_FILE_KEYS = {
    "moshi_name": loaders.MOSHI_NAME,
    "mimi_name": loaders.MIMI_NAME,
    "tokenizer_name": loaders.TEXT_TOKENIZER_NAME,
    "mimi_config_name": None,
}


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, with a message saying what is wrong and what is expected."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: moshi's `CheckpointInfo` plus the models it describes."""

    info: loaders.CheckpointInfo
    lm: LMModel
    mimi: MimiModel
    tokenizer: sentencepiece.SentencePieceProcessor
    source: str

    @property
    def lm_config(self) -> dict[str, Any]:
        """The LMModel kwargs of config.json (file names, model_type and lm_gen_config removed)."""
        assert self.info.lm_config is not None
        return self.info.lm_config


def is_local_checkpoint(model: str | Path) -> bool:
    return Path(model).is_dir()


def load_checkpoint(
    model: str | Path,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    revision: str | None = None,
    lm_overrides: dict[str, Any] | None = None,
) -> Checkpoint:
    """Loads a hub repo id (`kyutai/hibiki-zero-3b-pytorch-bf16`) or a local directory.

    `dtype` defaults to bfloat16 on CUDA and float32 elsewhere (bf16 matmuls are slow on CPU).
    `lm_overrides` changes LMModel kwargs that do not touch the weights (training sets
    `gradient_checkpointing`); they are not part of `lm_config`.
    """
    device = torch.device(device)
    if dtype is None:
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    info = checkpoint_info(model, revision=revision)
    _check_lm_weights(info)
    _check_mimi_weights(info)
    # moshi's builders write into the config dicts they are given; keep them as on disk.
    pristine = copy.deepcopy((info.raw_config, info.lm_config, info.mimi_config))
    lm = info.get_moshi(device=device, dtype=dtype, lm_kwargs_overrides=dict(lm_overrides or {}))
    mimi = info.get_mimi(device=device)
    info.raw_config, info.lm_config, info.mimi_config = pristine
    tokenizer = info.get_text_tokenizer()
    _check_compatible(lm, mimi, tokenizer, str(model))
    logger.info("loaded %s (%s, %.1fM LM parameters)", model, info.model_type,
                sum(p.numel() for p in lm.parameters()) / 1e6)
    return Checkpoint(info=info, lm=lm, mimi=mimi, tokenizer=tokenizer, source=str(model))


def checkpoint_info(model: str | Path, revision: str | None = None) -> loaders.CheckpointInfo:
    """Resolves the files of a checkpoint without loading weights."""
    if is_local_checkpoint(model):
        return _local_info(Path(model))
    if Path(model).exists() or str(model).startswith((".", "/", "~")) or str(model).count("/") != 1:
        raise CheckpointError(
            f"{model!r} is neither a checkpoint directory nor a Hugging Face repo id; "
            "pass a directory holding config.json or an id such as 'kyutai/hibiki-zero-3b-pytorch-bf16'"
        )
    try:
        # Fetched here first: moshi takes any missing config.json for a legacy Moshi 7B repo.
        config_path = Path(hf_hub_download(str(model), CONFIG_NAME, revision=revision))
        return loaders.CheckpointInfo.from_hf_repo(str(model), config_path=config_path, revision=revision)
    except Exception as exc:  # huggingface_hub raises many kinds: offline, 404, auth, timeouts
        raise CheckpointError(
            f"no local directory {str(model)!r}, and could not fetch it as a repo id from the Hugging Face hub "
            f"({type(exc).__name__}: {exc}); download it where the hub is reachable "
            "(`huggingface-cli download REPO --local-dir DIR`) and pass the directory instead"
        ) from exc


def _local_info(directory: Path) -> loaders.CheckpointInfo:
    config_path = directory / CONFIG_NAME
    if not config_path.is_file():
        raise CheckpointError(f"checkpoint directory {directory} has no {CONFIG_NAME}")
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{config_path} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_path} must hold a JSON object of LMModel kwargs")
    files: dict[str, Path | None] = {}
    for key, default in _FILE_KEYS.items():
        name = config.get(key, default)
        if name is None:
            files[key] = None
            continue
        path = directory / name
        if not path.is_file():
            how = f"named by {key!r} in {CONFIG_NAME}" if key in config else f"moshi's default for {key!r}"
            raise CheckpointError(f"checkpoint directory {directory} lacks {name!r} ({how})")
        files[key] = path
    if config.get("lora_name"):
        raise CheckpointError(f"{config_path}: LoRA checkpoints ('lora_name') are not supported; merge the LoRA first")
    # Every file is given as a Path, so moshi never asks the hub for anything.
    return loaders.CheckpointInfo.from_hf_repo(
        str(directory),
        moshi_weights=files["moshi_name"],
        mimi_weights=files["mimi_name"],
        tokenizer=files["tokenizer_name"],
        config_path=config_path,
        mimi_config_path=files["mimi_config_name"],
    )


def _safetensors_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from exc


def _compare_state(expected: dict[str, torch.Tensor], path: Path, what: str) -> None:
    found = _safetensors_shapes(path)
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = [(k, tuple(expected[k].shape), found[k]) for k in expected
             if k in found and tuple(expected[k].shape) != found[k]]
    if not (missing or unexpected or wrong):
        return
    lines = [f"{path.name} does not match the {what} its config describes:"]
    if wrong:
        lines.append(f"{len(wrong)} shape mismatches (config vs file), e.g. " + "; ".join(
            f"{k} {e} vs {f}" for k, e, f in wrong[:3]) + ";")
    if missing:
        lines.append(f"{len(missing)} tensors missing from the file, e.g. {missing[:3]}")
    if unexpected:
        lines.append(f"{len(unexpected)} tensors the config has no place for, e.g. {unexpected[:3]}")
    raise CheckpointError(" ".join(lines))


def _check_lm_weights(info: loaders.CheckpointInfo) -> None:
    if info.lm_config is None:
        raise CheckpointError("checkpoint has no config.json; legacy Moshi 7B repos are not supported")
    try:
        with torch.device("meta"):
            meta = loaders.get_moshi_lm(None, lm_kwargs=copy.deepcopy(info.lm_config), device="meta")
    except (AssertionError, TypeError, KeyError, ValueError) as exc:
        raise CheckpointError(f"config.json does not describe a valid moshi LMModel: {exc!r}") from exc
    _compare_state(meta.state_dict(), Path(info.moshi_weights), "LMModel")


def _check_mimi_weights(info: loaders.CheckpointInfo) -> None:
    try:
        with torch.device("meta"):
            config = copy.deepcopy(info.mimi_config or loaders._mimi_config)
            meta = loaders.get_mimi(None, config, device="meta", num_codebooks=config["quantizer"]["n_q"])
    except (AssertionError, TypeError, KeyError, ValueError) as exc:
        raise CheckpointError(f"the Mimi config does not describe a valid MimiModel: {exc!r}") from exc
    _compare_state(meta.state_dict(), Path(info.mimi_weights), "MimiModel")


def _check_compatible(lm: LMModel, mimi: MimiModel, tokenizer: sentencepiece.SentencePieceProcessor,
                      where: str) -> None:
    if tokenizer.vocab_size() < lm.text_card:
        raise CheckpointError(
            f"{where}: the SentencePiece tokenizer has {tokenizer.vocab_size()} pieces but the model's "
            f"text vocabulary (text_card) is {lm.text_card}; the tokenizer must cover every text id")
    if mimi.cardinality != lm.card:
        raise CheckpointError(
            f"{where}: Mimi codebooks have {mimi.cardinality} entries but the LM expects card={lm.card}")
    needed = max(lm.dep_q, lm.n_q - lm.dep_q)
    if mimi.total_codebooks < needed:
        raise CheckpointError(
            f"{where}: the LM uses {needed} codebooks per stream but Mimi has only {mimi.total_codebooks}")


def save_checkpoint(
    directory: str | Path,
    lm: LMModel,
    mimi: MimiModel,
    tokenizer_path: str | Path,
    lm_config: dict[str, Any],
    mimi_config: dict[str, Any] | None = None,
    model_type: str = "hibiki",
    lm_gen_config: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
    mimi_dtype: torch.dtype | None = None,
) -> Path:
    """Writes a Kyutai-format checkpoint directory, atomically (written aside, then renamed).

    `lm_config` holds the LMModel kwargs as in Kyutai's config.json; `mimi_config` the
    `get_mimi` config (None: Kyutai's standard Mimi, whose config moshi knows). `extra`
    adds keys such as `model_id` or a model card pointer to config.json. `dtype` and
    `mimi_dtype` store the LM's and the codec's floating-point weights in another precision.
    """
    directory = Path(directory)
    tmp = directory.with_name(f".{directory.name}.tmp-{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=False)
    config: dict[str, Any] = dict(copy.deepcopy(lm_config))
    config.update(
        model_type=model_type,
        lm_gen_config=dict(lm_gen_config or {}),
        moshi_name=LM_NAME,
        mimi_name=MIMI_NAME,
        tokenizer_name=TOKENIZER_NAME,
        **(extra or {}),
    )
    config.pop("mimi_config_name", None)
    if mimi_config is not None:
        config["mimi_config_name"] = MIMI_CONFIG_NAME
    write_mimi(tmp, mimi, mimi_config, mimi_dtype)
    _save_state(lm, tmp / LM_NAME, dtype)
    (tmp / TOKENIZER_NAME).write_bytes(Path(tokenizer_path).read_bytes())
    (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2))
    if directory.exists():
        old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
        directory.rename(old)
        tmp.rename(directory)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(directory)
    logger.info("saved checkpoint to %s", directory)
    return directory


def write_mimi(directory: str | Path, mimi: MimiModel, mimi_config: dict[str, Any] | None,
               dtype: torch.dtype | None = None) -> None:
    """Mimi's weights (and its config, unless it is Kyutai's standard one) in Kyutai's file
    names, each file written aside then renamed: a codec on its own, or part of a checkpoint.
    `dtype` stores floating-point tensors in another precision (the loader casts them back)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if mimi_config is not None:
        (directory / f".{MIMI_CONFIG_NAME}.tmp").write_text(json.dumps(mimi_config, indent=2))
        os.replace(directory / f".{MIMI_CONFIG_NAME}.tmp", directory / MIMI_CONFIG_NAME)
    _save_state(mimi, directory / f".{MIMI_NAME}.tmp", dtype)
    os.replace(directory / f".{MIMI_NAME}.tmp", directory / MIMI_NAME)


def load_mimi(directory: str | Path, device: str | torch.device = "cpu") -> MimiModel:
    """A codec written by `write_mimi` with its config, every codebook in use."""
    directory = Path(directory)
    missing = [name for name in (MIMI_CONFIG_NAME, MIMI_NAME) if not (directory / name).is_file()]
    if missing:
        raise CheckpointError(f"{directory} is not a codec directory: it lacks {', '.join(missing)} "
                              f"(a codec is {MIMI_CONFIG_NAME} + {MIMI_NAME}, as training.demo.codec and ship write them)")
    config = json.loads((directory / MIMI_CONFIG_NAME).read_text())
    return loaders.get_mimi(str(directory / MIMI_NAME), config, device=device, num_codebooks=config["quantizer"]["n_q"])


def _save_state(module: torch.nn.Module, path: Path, dtype: torch.dtype | None) -> None:
    state = {}
    for key, value in module.state_dict().items():
        value = value.detach().to("cpu")
        if dtype is not None and value.is_floating_point() and not key.startswith(("condition_provider.", "fuser.")):
            value = value.to(dtype)
        state[key] = value.contiguous().clone()
    save_file(state, str(path))


