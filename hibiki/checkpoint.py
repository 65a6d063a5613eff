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
from moshi.conditioners import ConditionTensors
from moshi.models import LMModel, MimiModel, loaders
from moshi.run_inference import get_condition_tensors
from safetensors import safe_open
from safetensors.torch import save_file

from hibiki.files import atomic_path, write_text_atomic
from hibiki.sampling import Sampling
from hibiki.stream_convention import StreamConvention, convention_for

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
LM_NAME = "model.safetensors"
MIMI_NAME = "mimi.safetensors"
MIMI_CONFIG_NAME = "mimi_config.json"
TOKENIZER_NAME = "tokenizer.model"

# config.json keys that name files, with the default moshi assumes when a key is absent.
FILE_KEYS = {
    "moshi_name": loaders.MOSHI_NAME,
    "mimi_name": loaders.MIMI_NAME,
    "tokenizer_name": loaders.TEXT_TOKENIZER_NAME,
    "mimi_config_name": None,
}
# Precisions a user may ask for by name; "auto" is `default_dtype`.
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
# On a CPU, fp32 (fast matmuls) while its weights take at most this share of the machine's memory, else bf16.
_CPU_FP32_MEMORY_SHARE = 0.25


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
    convention: StreamConvention

    @property
    def lm_config(self) -> dict[str, Any]:
        """The LMModel kwargs of config.json (file names, model_type and lm_gen_config removed)."""
        assert self.info.lm_config is not None
        return self.info.lm_config

    @property
    def metadata(self) -> dict[str, Any]:
        """The keys of config.json that are neither LMModel kwargs nor file names (model_type,
        lm_gen_config, model_id, ...): what `save_checkpoint` needs to write the same config back."""
        assert self.info.raw_config is not None
        return {k: copy.deepcopy(v) for k, v in self.info.raw_config.items()
                if k not in self.lm_config and k not in FILE_KEYS}

    @property
    def voice_conditioner(self) -> bool:
        return has_voice_conditioner(self.lm)

    def sampling(self, **overrides: Any) -> Sampling:
        """Its `lm_gen_config` as `Sampling`, then `overrides` (None: the checkpoint's)."""
        return Sampling.from_lm_gen_config(self.info.lm_gen_config, **overrides)

    def conditions(self, batch_size: int, cfg_coef: float = 1.0) -> ConditionTensors | None:
        """The condition tensors moshi's LMModel.forward and LMGen need for a batch: None for a
        model without a fuser, else those of moshi's run_inference ({} for Hibiki-Zero's empty
        set; original Hibiki's "very_good" voice transfer, with "very_bad" rows for CFG)."""
        if self.lm.fuser is None:
            return None
        return get_condition_tensors(self.info.model_type, self.lm, batch_size, cfg_coef)


def has_voice_conditioner(lm: LMModel) -> bool:
    """Whether the LM takes original Hibiki's voice-transfer condition. Hibiki-Zero's config
    declares an empty conditioner set, from which moshi still builds a provider (and a fuser)."""
    return bool(lm.condition_provider is not None and lm.condition_provider.conditioners and lm.fuser is not None)


def parse_dtype(name: str) -> torch.dtype | None:
    """A `--dtype` value: None for "auto", else one of DTYPES."""
    if name == "auto":
        return None
    if name not in DTYPES:
        raise CheckpointError(f"unknown dtype {name!r}; accepted: auto, {', '.join(DTYPES)}")
    return DTYPES[name]


def default_dtype(device: torch.device, lm_parameters: int) -> torch.dtype:
    """bf16 on CUDA; on a CPU fp32 (bf16 matmuls are slow there) unless its weights would not
    fit comfortably in the machine's memory."""
    if device.type == "cuda":
        return torch.bfloat16
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return torch.float32 if 4 * lm_parameters <= _CPU_FP32_MEMORY_SHARE * memory else torch.bfloat16


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

    `dtype` None is `default_dtype`. `lm_overrides` changes LMModel kwargs that do not touch the weights (training sets
    `gradient_checkpointing`); they are not part of `lm_config`.
    """
    device = torch.device(device)
    info = checkpoint_info(model, revision=revision)
    lm_parameters = _check_lm_weights(info)
    _check_mimi_weights(info)
    dtype = dtype or default_dtype(device, lm_parameters)
    # moshi's builders write into the config dicts they are given; keep them as on disk.
    pristine = copy.deepcopy((info.raw_config, info.lm_config, info.mimi_config))
    lm = info.get_moshi(device=device, dtype=dtype, lm_kwargs_overrides=dict(lm_overrides or {}))
    mimi = info.get_mimi(device=device)
    info.raw_config, info.lm_config, info.mimi_config = pristine
    tokenizer = info.get_text_tokenizer()
    _check_compatible(lm, mimi, tokenizer, str(model))
    try:
        convention = convention_for(info.model_id or {}, has_voice_conditioner(lm))
    except ValueError as exc:
        raise CheckpointError(f"{model}: {exc}") from exc
    logger.info("loaded %s (%s, %.1fM LM parameters, %s, %s stream convention)", model, info.model_type,
                lm_parameters / 1e6, str(dtype).removeprefix("torch."), convention.name)
    return Checkpoint(info=info, lm=lm, mimi=mimi, tokenizer=tokenizer, source=str(model), convention=convention)


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
    for key, default in FILE_KEYS.items():
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


def _check_lm_weights(info: loaders.CheckpointInfo) -> int:
    """Checks the LM file against its config; returns the number of LM parameters."""
    if info.lm_config is None:
        raise CheckpointError("checkpoint has no config.json; legacy Moshi 7B repos are not supported")
    try:
        with torch.device("meta"):
            meta = loaders.get_moshi_lm(None, lm_kwargs=copy.deepcopy(info.lm_config), device="meta")
    except (AssertionError, TypeError, KeyError, ValueError) as exc:
        raise CheckpointError(f"config.json does not describe a valid moshi LMModel: {exc!r}") from exc
    _compare_state(meta.state_dict(), Path(info.moshi_weights), "LMModel")
    if has_voice_conditioner(meta) and info.model_type != "hibiki":
        raise CheckpointError(f"config.json: a model with conditioners needs model_type 'hibiki' "
                              f"(the one moshi knows conditions for), got {info.model_type!r}")
    return sum(p.numel() for p in meta.parameters())


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
        logger.warning("%s: the SentencePiece tokenizer has %d pieces but the model's text vocabulary (text_card) "
                       "is %d; text ids beyond the tokenizer are shown as nothing", where, tokenizer.vocab_size(),
                       lm.text_card)
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
    metadata: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
    mimi_dtype: torch.dtype | None = None,
) -> Path:
    """Writes a Kyutai-format checkpoint directory, atomically (written aside, then renamed).

    `lm_config` holds the LMModel kwargs as in Kyutai's config.json; `mimi_config` the
    `get_mimi` config (None: Kyutai's standard Mimi, whose config moshi knows). `metadata`
    holds the other keys of config.json (`model_type`, default "hibiki", `lm_gen_config`,
    `model_id`, ...; a loaded checkpoint's `metadata` writes its config back). `dtype` and
    `mimi_dtype` store the LM's and the codec's floating-point weights in another precision.
    """
    directory = Path(directory)
    tmp = directory.with_name(f".{directory.name}.tmp-{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=False)
    config: dict[str, Any] = dict(copy.deepcopy(lm_config))
    config.update({"model_type": "hibiki", **copy.deepcopy(metadata or {})})
    config.update(moshi_name=LM_NAME, mimi_name=MIMI_NAME, tokenizer_name=TOKENIZER_NAME)
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
        write_text_atomic(directory / MIMI_CONFIG_NAME, json.dumps(mimi_config, indent=2))
    with atomic_path(directory / MIMI_NAME) as tmp:
        _save_state(mimi, tmp, dtype)


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


