"""Named model configurations and random-weight checkpoints built from them.

Random checkpoints are real Kyutai-format directories (config.json, safetensors,
SentencePiece, Mimi): tests and benchmarks load them through the same path as a
downloaded checkpoint, so nothing in the loading or streaming code is bypassed.
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

from hibiki.checkpoint import save_checkpoint

# Text ids fixed by Kyutai's tokenizers: 0 doubles as EPAD (the frame before a word).
TOKENIZER_SPECIAL_IDS = dict(unk_id=0, bos_id=1, eos_id=2, pad_id=3)


def mimi_config(dimension: int, n_filters: int, layers: int, n_q: int, bins: int = 2048) -> dict[str, Any]:
    """A Mimi config of moshi's layout: 24 kHz, 1920-sample (80 ms) frames, split RVQ."""
    seanet = dict(loaders._seanet_kwargs, dimension=dimension, n_filters=n_filters)
    transformer = dict(
        loaders._transformer_kwargs, d_model=dimension, num_heads=max(1, dimension // 64),
        num_layers=layers, dim_feedforward=4 * dimension, input_dimension=dimension,
        output_dimensions=[dimension],
    )
    quantizer = dict(loaders._quantizer_kwargs, dimension=max(16, dimension // 2), n_q=n_q, bins=bins,
                     input_dimension=dimension, output_dimension=dimension)
    return dict(loaders._mimi_config, seanet=seanet, transformer=transformer, quantizer=quantizer)


def _hibiki_delays(codebooks_per_stream: int, acoustic_delay: int = 2) -> list[int]:
    """Text, then target audio, then source audio; acoustic codebooks lag the semantic one."""
    stream = [0] + [acoustic_delay] * (codebooks_per_stream - 1)
    return [0] + stream + stream


def lm_config(dim: int, layers: int, heads: int, codebooks: int, dep_dim: int, dep_layers: int,
              card: int = 2048, **extra: Any) -> dict[str, Any]:
    """LMModel kwargs in the layout of Kyutai's Hibiki config.json files."""
    config = dict(
        dim=dim, text_card=32000, existing_text_padding_id=3, n_q=2 * codebooks, dep_q=codebooks,
        card=card, num_heads=heads, num_layers=layers, hidden_scale=4.125, causal=True,
        layer_scale=None, context=3000, max_period=10000, gating="silu", norm="rms_norm_f32",
        positional_embedding="rope", depformer_dim=dep_dim,
        depformer_dim_feedforward=int(4.125 * dep_dim), depformer_num_heads=max(1, dep_dim // 64),
        depformer_num_layers=dep_layers, depformer_layer_scale=None, depformer_multi_linear=True,
        depformer_context=codebooks, depformer_max_period=10000, depformer_gating="silu",
        depformer_pos_emb="none", depformer_weights_per_step=True,
        delays=_hibiki_delays(codebooks),
    )
    config.update(extra)
    return config


VOICE_QUALITY_LABELS = ["very_bad", "bad", "neutral", "good", "very_good"]


def with_voice_conditioner(lm_config: dict[str, Any]) -> dict[str, Any]:
    """Adds original Hibiki's voice-transfer conditioner: a LUT over voice-similarity labels,
    summed into the input; inference asks for 'very_good' and guides away from 'very_bad'."""
    lut = dict(n_bins=len(VOICE_QUALITY_LABELS), dim=16, tokenizer="noop", possible_values=VOICE_QUALITY_LABELS)
    return dict(lm_config, conditioners={"description": {"type": "lut", "lut": lut}},
                fuser={"sum": ["description"]})


# Each preset: LM kwargs, Mimi config (None = Kyutai's standard Mimi), tokenizer size.
PRESETS: dict[str, dict[str, Any]] = {
    # Unit tests: loads and steps in milliseconds.
    "tiny": dict(
        lm=lm_config(dim=64, layers=2, heads=4, codebooks=4, dep_dim=32, dep_layers=1, context=250),
        mimi=mimi_config(dimension=32, n_filters=4, layers=1, n_q=8),
        vocab=400,
    ),
    # A mid-size model for CPU benchmarks (a candidate size class for the demo model).
    "small": dict(
        lm=lm_config(dim=256, layers=6, heads=4, codebooks=8, dep_dim=128, dep_layers=2, context=750),
        mimi=mimi_config(dimension=128, n_filters=16, layers=2, n_q=8),
        vocab=2000,
    ),
    # Shape of Hibiki-Zero 3B as published (third-party reading, see reference), standard Mimi.
    "zero-3b": dict(
        lm=lm_config(dim=2048, layers=28, heads=16, codebooks=16, dep_dim=1024, dep_layers=6, kv_repeat=2),
        mimi=None,
        vocab=32000,
    ),
}

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


def build_random_checkpoint(directory: str | Path, preset: str = "tiny", seed: int = 0,
                            model_type: str = "hibiki", voice_conditioner: bool = False) -> Path:
    """Writes a random-weight checkpoint of a named preset, in Kyutai's format."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    spec = PRESETS[preset]
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        tok_path = train_placeholder_tokenizer(Path(tmp) / "tokenizer.model", spec["vocab"])
        text_card = sentencepiece.SentencePieceProcessor(str(tok_path)).vocab_size()
        lm_config = dict(copy.deepcopy(spec["lm"]), text_card=text_card)
        if voice_conditioner:
            lm_config = with_voice_conditioner(lm_config)
        lm = loaders.get_moshi_lm(None, lm_kwargs=copy.deepcopy(lm_config), device="cpu", dtype=torch.float32)
        mimi = loaders.get_mimi(None, copy.deepcopy(spec["mimi"]), device="cpu")
        if spec["mimi"] is not None:
            _init_codebooks(mimi, seed)
        return save_checkpoint(
            directory, lm, mimi, tok_path, lm_config, mimi_config=spec["mimi"], model_type=model_type,
            lm_gen_config=dict(temp=0.8, temp_text=0.7, top_k=250, top_k_text=25),
            extra=dict(model_id=dict(name=f"random-{preset}", seed=seed)),
        )
