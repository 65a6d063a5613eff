"""Ships a trained demo checkpoint as the embedded default model, with its model card.

    python -m training.demo.ship OUT [--checkpoint DIR] [--dest hibiki/default_model]
        [--corpus DIR ...] [--eval NAME=DIR ...] [--continued-from MODEL_DIR]

OUT is the recipe's output directory (run.sh's OUT). The checkpoint defaults to the GRPO
stage's best one once that stage has finished, else the supervised stage's latest. A model
trained on more corpora than OUT's, or evaluated elsewhere, names them with --corpus and
--eval (each repeatable) so that its card says what it really saw and scored; one whose
supervised stage started from a shipped model names it with --continued-from, and the new
model's provenance (config.json's `model_id.provenance`, from which the card is written)
carries over what that one was trained on. Weights
are written in float16 (half the repository's size; loaded back as float32) in the Kyutai
format, beside a model card
(README.md) whose metric table comes from the recipe's evaluations of the test split.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from hibiki.checkpoint import load_checkpoint, save_checkpoint
from hibiki.dataset_source import open_dataset
from hibiki.default_model import SHIPPED
from training.demo.base import LM_GEN_CONFIG
from training.demo.report_card import evaluation_table, load_evaluations, load_json

CARD = """# hibiki-demo-fr-en: the embedded default model

A small Hibiki (moshi `LMModel`, {params:.1f} M parameters: dual stream, inner-monologue text,
acoustic delay {acoustic_delay}, {width} wide, {layers} layers, depth transformer of {dep_dim} x
{dep_layers}) around a small Mimi codec ({codebooks} codebooks), trained from scratch with
this project's pipeline (`training/recipes/demo_fr_en/`: `run.sh`, then supervised phases
continued on more corpora, as config.json's `model_id.provenance` lists) on its synthetic
French->English corpora.
It is what `hibiki translate`, `hibiki serve` and `hibiki eval` use when no model is named.

## What it was trained on

- Text: sentence pairs realised by pyrealb in both languages from a lexicon of about 220
  French/English lemmas (people, animals, objects, places; common verbs, adjectives,
  numbers), with questions, negation, object pronouns, past/present/future tenses.
- Speech: French spoken by espeak-ng ({voices}; drawn pitch and rate), 1 to 4
  sentences per utterance; English targets spoken by espeak-ng's en-us m3 voice, placed by
  the coarse alignment of `training/recipes/demo_fr_en/prepare.yaml`.
- Sizes: {data}.
- Checkpoint: `{checkpoint}`.{origin}

## What it can and cannot translate

It translates French sentences built from its lexicon and constructions, spoken clearly
(synthetic or careful human speech), into English text and espeak-like English speech.
It knows no word outside the lexicon: other French speech gives fluent English of the
demo domain that has nothing to do with the input. Its voice is always the same; the
codec was trained on espeak voices only, so real voices are reproduced poorly.

## Metrics (held-out test split: unseen sentences and adjective-noun combinations)

{metrics}
"""


def default_checkpoint(out: Path) -> Path:
    """The GRPO stage's best once that stage has finished (its summary is written last), else the latest
    supervised one (of the spread-lag phase when it has run)."""
    if (out / "grpo" / "grpo_summary.json").is_file():
        return out / "grpo" / "best"
    for phase in ("sft_spread", "sft"):
        if (latest := load_json(out / phase / "latest.json")) is not None:
            return Path(latest["checkpoint"])
    raise FileNotFoundError(f"no GRPO best or supervised checkpoint under {out}: run the recipe first")


def corpus_voices(corpora: list[Path]) -> set[str]:
    """The French voices of the train splits as the corpora really spoke them (the config can change between runs)."""
    manifests = [m for corpus in corpora if (m := corpus / "train" / "manifest.jsonl").is_file()]
    return {voice for m in manifests for voice in open_dataset(m, "train")[0]["voice"]}


def corpus_splits(corpora: list[Path]) -> dict[str, dict[str, float]]:
    """Utterances and hours per split, summed over the corpora."""
    totals: dict[str, dict[str, float]] = {}
    for corpus in corpora:
        for split, size in (load_json(corpus / "summary.json") or {}).items():
            total = totals.setdefault(split, {"utterances": 0, "hours": 0.0})
            total["utterances"] += size["utterances"]
            total["hours"] = round(total["hours"] + size["hours"], 4)
    return totals


def provenance(checkpoint: Path, corpora: list[Path], continued_from: Path | None) -> dict:
    """What a shipped model was trained on, kept in its config.json (`model_id.provenance`) so
    that a model continued from it can carry it over; the card is written from it."""
    earlier = None
    if continued_from is not None:
        config = load_json(continued_from / "config.json")
        if config is None:
            raise FileNotFoundError(f"--continued-from {continued_from} holds no config.json: name a shipped model directory")
        earlier = config.get("model_id", {}).get("provenance")
        if earlier is None:
            raise ValueError(f"{continued_from}/config.json has no model_id.provenance to carry over "
                             "(training.demo.ship writes it): name a shipped model directory")
        earlier = dict(earlier, directory=str(continued_from))
    voices = corpus_voices(corpora) | set(earlier["voices"] if earlier else ())
    return {"checkpoint": str(checkpoint), "corpora": [str(c) for c in corpora], "splits": corpus_splits(corpora),
            "voices": sorted(voices), "started_from": earlier}


def sizes_text(record: dict) -> str:
    if not record["splits"]:
        return "unknown"
    sizes = ", ".join(f"{split} {size['utterances']} utterances ({size['hours']:.2f} h of French)"
                      for split, size in record["splits"].items())
    corpora = record["corpora"]
    return sizes + (f", from {len(corpora)} corpora ({', '.join(corpora)})" if len(corpora) > 1 else "")


def origin_text(record: dict) -> str:
    """The card's bullet for a model continued from a shipped one, down the whole chain."""
    parts, earlier = [], record["started_from"]
    while earlier is not None:
        parts.append(f"the model then in `{earlier['directory']}`, trained on {sizes_text(earlier)}")
        earlier = earlier["started_from"]
    return f"\n- Started from: {'; that one started from '.join(parts)}." if parts else ""


def voices_text(voices: list[str]) -> str:
    return f"{len(voices)} voice{'s' if len(voices) > 1 else ''}: {', '.join(voices)}" if voices else "voices unknown"


def ship(out: Path, checkpoint: Path, dest: Path, corpora: list[Path] | None = None,
         eval_dirs: dict[str, Path] | None = None, continued_from: Path | None = None) -> Path:
    corpora = corpora or [out / "corpus"]
    record = provenance(checkpoint, corpora, continued_from)  # read before `dest` (maybe the same model) is overwritten
    if eval_dirs:  # every input is checked before the default model is overwritten
        evals = {name: summary for name, path in eval_dirs.items() if (summary := load_json(path / "summary.json"))}
        if missing := sorted(set(eval_dirs) - set(evals)):
            raise FileNotFoundError(f"no summary.json in the evaluation directories of {missing}")
    else:
        evals = load_evaluations(out)
    base = load_checkpoint(str(checkpoint), device="cpu", dtype=torch.float32)
    config = base.lm_config
    model_id = dict(base.metadata.get("model_id", {}), name="hibiki-demo-fr-en", provenance=record)
    save_checkpoint(dest, base.lm, base.mimi, base.info.tokenizer, config, mimi_config=base.info.mimi_config,
                    metadata=dict(base.metadata, lm_gen_config=LM_GEN_CONFIG, model_id=model_id),
                    dtype=torch.float16, mimi_dtype=torch.float16)
    card = CARD.format(
        voices=voices_text(record["voices"]), params=sum(p.numel() for p in base.lm.parameters()) / 1e6,
        acoustic_delay=config["delays"][2] - config["delays"][1],
        width=config["dim"], layers=config["num_layers"], dep_dim=config["depformer_dim"],
        dep_layers=config["depformer_num_layers"], codebooks=base.info.mimi_config["quantizer"]["n_q"],
        data=sizes_text(record), checkpoint=checkpoint, origin=origin_text(record),
        metrics="\n".join(evaluation_table(evals)) if evals else "(no evaluation found)")
    (dest / "README.md").write_text(card)
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="The recipe's output directory (run.sh's OUT).")
    parser.add_argument("--checkpoint", type=Path, help="Checkpoint to ship (default: OUT/grpo/best, else the latest SFT one).")
    parser.add_argument("--dest", type=Path, default=SHIPPED, help="Where the default model lives (default: %(default)s).")
    parser.add_argument("--corpus", type=Path, action="append",
                        help="A corpus the model was trained on (repeatable; default: OUT/corpus).")
    parser.add_argument("--eval", action="append", metavar="NAME=DIR",
                        help="An evaluation (hibiki eval --out DIR) for the card's table "
                             "(repeatable; default: OUT/eval/sft and OUT/eval/grpo).")
    parser.add_argument("--continued-from", type=Path, metavar="MODEL_DIR",
                        help="The shipped model the supervised stage started from (e.g. hibiki/default_model as it was); "
                             "its provenance (what it was trained on) is carried over.")
    args = parser.parse_args()
    for corpus in args.corpus or []:
        if not (corpus / "summary.json").is_file():
            parser.error(f"--corpus {corpus} holds no summary.json: name a directory built by training.demo.corpus")
    evals = {}
    for item in args.eval or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            parser.error(f"--eval takes NAME=DIR (e.g. sft=out/eval/sft), got {item!r}")
        evals[name] = Path(path)
    try:
        checkpoint = args.checkpoint or default_checkpoint(args.out)
        dest = ship(args.out, checkpoint, args.dest, args.corpus, evals, args.continued_from)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None
    size = sum(p.stat().st_size for p in dest.iterdir()) / 1e6
    print(f"shipped {checkpoint} as the default model in {dest} ({size:.1f} MB, model card {dest / 'README.md'})")


if __name__ == "__main__":
    main()
