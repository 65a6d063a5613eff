"""Random-weight checkpoints of a preset, in Kyutai's format, for tests and benchmarks.

They are real checkpoint directories (config.json, safetensors, SentencePiece, Mimi):
everything loads them through the same path as a downloaded checkpoint. Kyutai's configs
are built at full size (the published shapes, standard Mimi: what the GPU check and the
shape script run) or reduced: the same keys and streams, narrower and shallower, with a
small Mimi (named by `mimi_config_name`, the one key a reduced config.json adds).
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import sentencepiece
import torch
from moshi.models import loaders
from moshi.quantization.core_vq import EuclideanCodebook
from sentencepiece import sentencepiece_model_pb2

from hibiki.checkpoint import FILE_KEYS, save_checkpoint
from hibiki.presets import (
    KYUTAI_REPOS,
    OWN_LM_GEN_CONFIG,
    OWN_PRESETS,
    PRESET_NAMES,
    TOKENIZER_SPECIAL_IDS,
    kyutai_config,
    mimi_config,
    with_voice_conditioner,
)
from hibiki.stream_convention import CONFIG_KEY, MOSHI_PADDED

_TOKENIZER_TEXT = """\
Bonjour tout le monde, je suis très heureux d'être ici aujourd'hui.
Hello everyone, I am very happy to be here today.
Le chat noir dort sur la petite table de la cuisine.
The black cat is sleeping on the small kitchen table.
Nous ne mangeons pas de viande le vendredi soir.
We do not eat meat on Friday evenings.
Est-ce que vous pouvez me donner le livre rouge, s'il vous plaît ?
Can you give me the red book, please?
Elle a acheté trois pommes vertes et deux oranges au marché.
She bought three green apples and two oranges at the market.
Demain, ils vont visiter le musée avec leurs enfants.
Tomorrow, they will visit the museum with their children.
"""

# Sizes of a reduced Kyutai config (keys whose value is None stay None).
_REDUCED = dict(dim=64, num_heads=4, num_layers=2, depformer_dim=32, depformer_num_heads=2,
                depformer_num_layers=1)


def train_placeholder_tokenizer(path: Path, vocab_size: int) -> Path:
    """A SentencePiece model with Kyutai's special ids, from a few built-in sentences.

    Byte fallback keeps any text encodable; the vocabulary may come out smaller than
    `vocab_size` on so little text, so callers size `text_card` from the result.
    """
    lines = _TOKENIZER_TEXT.splitlines()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines * 4), model_prefix=str(path.with_suffix("")),
        vocab_size=vocab_size, model_type="unigram", character_coverage=1.0,
        hard_vocab_limit=False, byte_fallback=True, minloglevel=2, **TOKENIZER_SPECIAL_IDS,
    )
    return path


def pad_tokenizer(path: Path, pieces: int) -> Path:
    """Grows a SentencePiece model to exactly `pieces` pieces (never-chosen filler pieces), so a
    random checkpoint keeps its config's `text_card` (Kyutai's: 48000) with a tokenizer covering it."""
    model = sentencepiece_model_pb2.ModelProto()
    model.ParseFromString(path.read_bytes())
    lowest = min(p.score for p in model.pieces)
    for index in range(len(model.pieces), pieces):
        model.pieces.add(piece=f"▁filler{index}", score=lowest - 1.0)
    path.write_bytes(model.SerializeToString())
    return path


def _init_codebooks(mimi, seed: int) -> None:
    """Spreads a random Mimi's codebooks over its encoder's latents.

    moshi starts every codebook entry equal and fills them by k-means on the first
    training batch, so an untrained Mimi maps every input to code 0. One training-mode
    pass over varied audio (tones and noise) runs that k-means to find each codebook's
    scale; the entries are then redrawn as Gaussians of that mean and spread, because
    k-means with more entries than latents leaves near-duplicate entries whose ties make
    the codes depend on float rounding (e.g. on the batch size).
    """
    generator = torch.Generator().manual_seed(seed)
    rate = mimi.sample_rate
    t = torch.arange(rate) / rate
    segments = [torch.sin(2 * torch.pi * (80 + 3000 * torch.rand(1, generator=generator)) * t) * torch.rand(1, generator=generator)
                + 0.1 * torch.rand(1, generator=generator) * torch.randn(rate, generator=generator) for _ in range(20)]
    mimi.train()
    with torch.no_grad():
        mimi(torch.cat(segments)[None, None])
    mimi.eval()
    codebooks = [m for m in mimi.modules() if isinstance(m, EuclideanCodebook)]
    with torch.no_grad():
        for codebook in codebooks:
            entries = codebook.embedding
            spread = entries.mean(0) + entries.std(0) * torch.randn(entries.shape, generator=generator)
            codebook.embedding_sum.copy_(spread)
            codebook.cluster_usage.fill_(1.0)
            codebook._embedding = None  # cached view of the old entries


def _reduce(config: dict[str, Any]) -> dict[str, Any]:
    """A Kyutai config, narrower and shallower: the same keys, streams, delays and options."""
    config = dict(config, **_REDUCED)
    for key, small in (("depformer_dim_feedforward", 4 * _REDUCED["depformer_dim"]),
                       ("depformer_low_rank_embeddings", 8)):
        if config.get(key) is not None:
            config[key] = small
    return config


def _spec(preset: str, reduced: bool, seed: int) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any], int | None]:
    """LM kwargs, Mimi config (None: Kyutai's standard Mimi), config.json's other keys, and
    the exact tokenizer size (None: whatever the placeholder tokenizer gets). A Kyutai config's
    other keys are its own, as published (1B and 2B have no model_id)."""
    if preset in OWN_PRESETS:
        spec = OWN_PRESETS[preset]
        metadata = dict(lm_gen_config=dict(OWN_LM_GEN_CONFIG),
                        model_id={"name": f"random-{preset}", CONFIG_KEY: MOSHI_PADDED.name, "seed": seed})
        return copy.deepcopy(spec["lm"]), spec["mimi"], metadata, None
    full = kyutai_config(preset)
    lm = {k: v for k, v in full.items() if k not in FILE_KEYS and k not in ("model_type", "model_id", "lm_gen_config")}
    metadata = {k: v for k, v in full.items() if k in ("model_type", "model_id", "lm_gen_config")}
    codebooks = max(lm["dep_q"], lm["n_q"] - lm["dep_q"])
    mimi = mimi_config(dimension=32, n_filters=4, layers=1, n_q=codebooks) if reduced else None
    return (_reduce(lm) if reduced else lm), mimi, metadata, lm["text_card"]


def build_random_checkpoint(directory: str | Path, preset: str = "tiny", seed: int = 0, reduced: bool = False,
                            voice_conditioner: bool = False, dtype: torch.dtype = torch.float32) -> Path:
    """Writes a random-weight checkpoint of a preset in Kyutai's format. `reduced` shrinks a
    Kyutai config; `voice_conditioner` adds original Hibiki's conditioner to one of ours."""
    if preset not in PRESET_NAMES:
        raise ValueError(f"unknown preset {preset!r}; choose one of {PRESET_NAMES}")
    if reduced and preset not in KYUTAI_REPOS:
        raise ValueError(f"only Kyutai's presets are reduced ({sorted(KYUTAI_REPOS)}); {preset!r} is small already")
    lm_kwargs, mimi_kwargs, metadata, pieces = _spec(preset, reduced, seed)
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        tok_path = train_placeholder_tokenizer(Path(tmp) / "tokenizer.model", OWN_PRESETS.get(preset, {}).get("vocab", 400))
        if pieces is None:
            lm_kwargs["text_card"] = sentencepiece.SentencePieceProcessor(str(tok_path)).vocab_size()
        else:
            pad_tokenizer(tok_path, pieces)
        if voice_conditioner:
            lm_kwargs = with_voice_conditioner(lm_kwargs)
        lm = loaders.get_moshi_lm(None, lm_kwargs=copy.deepcopy(lm_kwargs), device="cpu", dtype=dtype)
        mimi = loaders.get_mimi(None, copy.deepcopy(mimi_kwargs), device="cpu")
        if mimi_kwargs is not None:
            _init_codebooks(mimi, seed)
        return save_checkpoint(directory, lm, mimi, tok_path, lm_kwargs, mimi_config=mimi_kwargs, metadata=metadata)
