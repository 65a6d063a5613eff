"""The demo model's starting point: a random-weight Hibiki LM around the trained demo codec
and a tokenizer of the corpus's English side, written in Kyutai's checkpoint format.

    python -m training.demo.base [CONFIG.yaml] [key=value ...]      (--help lists the keys)

training.prepare encodes the corpus with this checkpoint's codec and tokenizer and
training.sft starts from its weights, through the same loading path as a downloaded
Kyutai checkpoint. The LM is sized to serve many real-time sessions on a CPU: its
width and depth are the keys below.
"""

from __future__ import annotations

import copy
import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import sentencepiece
import torch
from moshi.models import loaders

from hibiki.checkpoint import MIMI_CONFIG_NAME, load_mimi, save_checkpoint
from hibiki.presets import TOKENIZER_SPECIAL_IDS, lm_config
from hibiki.stream_convention import CONFIG_KEY, MOSHI_PADDED
from training.config import run_script

# The demo's sampling defaults, written into its base checkpoint and into the shipped model.
# Argmax: the small demo LM scores higher greedy than at moshi's temperatures (measured in the
# recipe's RESULTS.md). Clients and `--temp` still sample.
LM_GEN_CONFIG = dict(temp=0.0, temp_text=0.0, top_k=250, top_k_text=25)

logger = logging.getLogger("hibiki.demo_base")


@dataclass
class BaseConfig:
    corpus: str = "out/demo_corpus"
    codec: str = "out/demo_codec"
    out: str = "out/demo_base"
    vocab: int = 1000  # SentencePiece pieces of the English side (byte fallback covers the rest)
    dim: int = 256
    layers: int = 4
    heads: int = 4
    dep_dim: int = 128
    dep_layers: int = 1
    context: int = 500  # attention window in 80 ms frames (40 s)
    seed: int = 0


def english_lines(corpus: Path) -> list[str]:
    """Every English training sentence of the corpus, one per line."""
    manifest = corpus / "train" / "manifest.jsonl"
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} not found: build the corpus first (python -m training.demo.corpus out={corpus})")
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    return [s["translation"] for r in rows for s in r["sentences"]]


def train_tokenizer(lines: list[str], path: Path, vocab: int) -> Path:
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_prefix=str(path.with_suffix("")), vocab_size=vocab,
        model_type="unigram", character_coverage=1.0, hard_vocab_limit=False, byte_fallback=True,
        minloglevel=2, **TOKENIZER_SPECIAL_IDS,
    )
    return path


def build_base(config: BaseConfig) -> Path:
    torch.manual_seed(config.seed)
    codec_dir = Path(config.codec)
    if not (codec_dir / MIMI_CONFIG_NAME).is_file():
        raise FileNotFoundError(f"no codec in {codec_dir}: train it first (python -m training.demo.codec out={codec_dir})")
    mimi_config = json.loads((codec_dir / MIMI_CONFIG_NAME).read_text())
    mimi = load_mimi(codec_dir)
    lines = english_lines(Path(config.corpus))
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = train_tokenizer(lines, Path(tmp) / "tokenizer.model", config.vocab)
        text_card = sentencepiece.SentencePieceProcessor(str(tokenizer)).vocab_size()
        kwargs = lm_config(dim=config.dim, layers=config.layers, heads=config.heads,
                           codebooks=mimi_config["quantizer"]["n_q"], dep_dim=config.dep_dim,
                           dep_layers=config.dep_layers, card=mimi_config["quantizer"]["bins"],
                           context=config.context, text_card=text_card)
        lm = loaders.get_moshi_lm(None, lm_kwargs=copy.deepcopy(kwargs), device="cpu", dtype=torch.float32)
        logger.info("LM: %.1fM parameters, %d text pieces from %d English sentences",
                    sum(p.numel() for p in lm.parameters()) / 1e6, text_card, len(lines))
        return save_checkpoint(
            config.out, lm, mimi, tokenizer, kwargs, mimi_config=mimi_config,
            metadata=dict(lm_gen_config=LM_GEN_CONFIG, model_id={
                "name": "hibiki-demo-fr-en-base", "seed": config.seed, CONFIG_KEY: MOSHI_PADDED.name}),
        )


def main() -> None:
    _, out = run_script(BaseConfig, __doc__, build_base)
    print(f"demo base checkpoint (random LM, trained codec, corpus tokenizer) in {out}")


if __name__ == "__main__":
    main()
