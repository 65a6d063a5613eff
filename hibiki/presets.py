"""Named model configurations: this project's own sizes and Kyutai's published Hibiki configs.

Kyutai's configs (`kyutai_configs/`, one `config.json` per hub repo, reconstructed from
public ports that load the real weights strictly) are the shapes users bring; benchmarks
and tests build random-weight checkpoints of them (`hibiki.random_checkpoint`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from moshi.models import loaders

from hibiki.tokens import BOS, EOS, EPAD, PAD

KYUTAI_CONFIG_DIR = Path(__file__).parent / "kyutai_configs"
# Preset name -> the Kyutai hub repo whose config.json it is (a `.variant` where the public
# record leaves a key open; see the file's own keys).
KYUTAI_REPOS = {
    "hibiki-1b": "hibiki-1b-pytorch-bf16",
    "hibiki-2b": "hibiki-2b-pytorch-bf16",
    "hibiki-2b-dev": "hibiki-2b-pytorch-bf16.dev-variant",
    "hibiki-zero-3b": "hibiki-zero-3b-pytorch-bf16",
    "hibiki-zero-3b-null-fuser": "hibiki-zero-3b-pytorch-bf16.null-fuser-variant",
}
# Text ids fixed by Kyutai's tokenizers (hibiki.tokens): unk doubles as EPAD.
TOKENIZER_SPECIAL_IDS = dict(unk_id=EPAD, bos_id=BOS, eos_id=EOS, pad_id=PAD)
VOICE_QUALITY_LABELS = ["very_bad", "bad", "neutral", "good", "very_good"]


def kyutai_config(preset: str) -> dict[str, Any]:
    """The whole config.json of a Kyutai repo (LM kwargs, file names, model_type, model_id)."""
    return json.loads((KYUTAI_CONFIG_DIR / f"{KYUTAI_REPOS[preset]}.json").read_text())


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
    """LMModel kwargs in the layout of Kyutai's original Hibiki config.json files."""
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


def with_voice_conditioner(lm_config: dict[str, Any]) -> dict[str, Any]:
    """Adds original Hibiki's voice-transfer conditioner: a LUT over voice-similarity labels,
    summed into the input; inference asks for 'very_good' and guides away from 'very_bad'."""
    lut = dict(n_bins=len(VOICE_QUALITY_LABELS), dim=16, tokenizer="noop", possible_values=VOICE_QUALITY_LABELS)
    return dict(lm_config, conditioners={"description": {"type": "lut", "lut": lut}},
                fuser={"sum": ["description"]})


# This project's own sizes: LM kwargs, Mimi config, tokenizer size, config.json's other keys.
OWN_PRESETS: dict[str, dict[str, Any]] = {
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
}
OWN_LM_GEN_CONFIG = dict(temp=0.8, temp_text=0.7, top_k=250, top_k_text=25)
PRESET_NAMES = sorted(OWN_PRESETS) + sorted(KYUTAI_REPOS)
