"""The demo recipe's report card: what was built, how long each stage took, and how well the
result translates, from the files the recipe's stages leave in its output directory.

    python -m training.demo.report_card OUT      (OUT/REPORT.md, OUT/report_*.png)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from hibiki.audio import FRAME_PERIOD_S

PHASE_LABELS = {"sft_text": "text only", "sft": "text + audio", "sft_spread": "text + audio, lags drawn in [1, 2] s"}
EVAL_COLUMNS = [("text_bleu", "BLEU"), ("asr_bleu", "ASR-BLEU"), ("laal_s", "LAAL s"), ("end_offset_s", "End Offset s"),
                ("text_laal_s", "text LAAL s"), ("text_end_offset_s", "text End Offset s"), ("rtf", "RTF")]


def load_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def machine() -> str:
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores{gpu}, torch {torch.__version__}"


def markdown_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    return lines + ["| " + " | ".join("-" if v is None else str(v) for v in row) + " |" for row in rows]


def load_evaluations(out: Path) -> dict[str, dict]:
    """The recipe's evaluation summaries of the test split, by checkpoint (sft, grpo)."""
    return {name: s for name in ("sft", "grpo") if (s := load_json(out / "eval" / name / "summary.json"))}


def evaluation_table(evals: dict[str, dict]) -> list[str]:
    """Markdown metric table of the evaluations, then the commands that produced them."""
    lines = markdown_table(["checkpoint", "n"] + [label for _, label in EVAL_COLUMNS],
                           [[name, s.get("utterances")] + [s.get(key) for key, _ in EVAL_COLUMNS] for name, s in evals.items()])
    return lines + ["", "Commands: " + "; ".join(f"`{s['run']['command']}`" for s in evals.values())]


def _plot_quality_latency(evals: dict[str, dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, summary in evals.items():
        ax.scatter(summary.get("laal_s"), summary.get("text_bleu"), label=name, s=60)
    ax.set_xlabel("LAAL (s, lower is earlier)")
    ax.set_ylabel("BLEU")
    ax.set_title("Test split: quality vs latency")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plot_training(phases: dict[str, dict], codec: list | None, path: Path) -> None:
    """Codec loss; the supervised phases one after the other on one step axis."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    if codec:
        axes[0].plot([r["step"] for r in codec], [r["stft"] for r in codec])
    axes[0].set_title("codec: multi-resolution STFT loss")
    axes[0].set_xlabel("step")
    offset = 0
    for name, summary in phases.items():
        history = summary["history"]
        steps = [offset + r["step"] for r in history]
        axes[1].plot(steps, [r["text_loss"] for r in history], label=f"text (train, {name})")
        if name != "sft_text":
            axes[1].plot(steps, [r["audio_loss"] for r in history], label=f"audio (train, {name})")
        val = [r for r in history if "val_text_loss" in r]
        for key, label in (("val_text_loss", "text (valid)"), ("val_text_loss_other_source", "text (valid, other source)")):
            points = [(offset + r["step"], r[key]) for r in val if key in r]  # runs before the probe lack the second
            if points:
                axes[1].plot(*zip(*points), "o-", label=f"{label}, {name}")
        offset += summary["steps"]
    if phases:
        axes[1].legend(fontsize=6)
    axes[1].set_title("supervised stage: losses")
    axes[1].set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _figure(value: float | None) -> str:
    """A validation figure; none when the model wrote no words to time."""
    return "none" if value is None else f"{value:.2f}"


def report(out: Path) -> Path:
    recipe = load_json(out / "recipe.json") or {}
    corpus = load_json(out / "corpus" / "summary.json") or {}
    codec_eval = load_json(out / "codec" / "eval.json")
    codec_state = out / "codec" / "state.pt"
    codec_history = torch.load(codec_state, weights_only=False, map_location="cpu")["history"] if codec_state.is_file() else None
    phases = {name: summary for name in PHASE_LABELS if (summary := load_json(out / name / "train_summary.json"))}
    grpo = load_json(out / "grpo" / "grpo_summary.json")
    evals = load_evaluations(out)
    stages = [load_json(p) for p in sorted((out / "stages").glob("*.done"), key=lambda p: p.stat().st_mtime)]

    lines = ["# Demo French->English Hibiki: report card", "",
             f"Built {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}.", "",
             f"Recipe sizes: `{json.dumps(recipe)}`", "", "## Test split (held-out sentences and adjective-noun combinations)", ""]
    if evals:
        lines += evaluation_table(evals) + [""]
        _plot_quality_latency(evals, out / "report_quality_latency.png")
        lines += ["![quality vs latency](report_quality_latency.png)", ""]
    else:
        lines += ["(no evaluation yet)", ""]
    lines += ["## Data", ""]
    lines += markdown_table(["split", "utterances", "French hours"], [[k, v["utterances"], v["hours"]] for k, v in corpus.items()])
    for split in ("train", "valid", "test"):
        reports = [load_json(p) for p in sorted((out / "data" / split).glob("report-*.json"))]
        if reports:
            frames = sum(r["counts"].get("frames", 0) for r in reports)
            ok = sum(r["counts"].get("ok", 0) for r in reports)
            lines.append(f"- prepared {split}: {ok} examples, {frames * FRAME_PERIOD_S / 3600:.2f} h aligned")
    lines += ["", "## Codec", ""]
    if codec_eval:
        lines += markdown_table(
            ["Whisper WER original %", "WER reconstruction %", "ASR-BLEU original", "ASR-BLEU reconstruction",
             "STFT distance en", "STFT distance fr", "streaming RTF (1 thread)"],
            [[codec_eval["wer_original"], codec_eval["wer_codec"], codec_eval.get("asr_bleu_original"),
              codec_eval.get("asr_bleu_codec"), codec_eval["stft_distance_en"],
              codec_eval["stft_distance_fr"], codec_eval["streaming_rtf_one_thread"]]])
    lines += ["", "## Training", ""]
    for name, summary in phases.items():
        val = [r for r in summary["history"] if "val_text_loss" in r]
        line = (f"- supervised ({PHASE_LABELS[name]}): {summary['steps']} steps, "
                f"{summary['wall_s'] / 60:.0f} min, {summary['frames_per_s']:.0f} frames/s")
        if val:  # the loss with another example's source says how much the model listens
            line += f", final valid text loss {val[-1]['val_text_loss']:.3f}"
            if "val_text_loss_other_source" in val[-1]:
                line += f" ({val[-1]['val_text_loss_other_source']:.3f} with another example's source)"
        lines.append(line)
    if grpo:
        first, last = grpo["history"][0], grpo["history"][-1]
        lines.append(f"- GRPO: {len(grpo['history']) - 1} steps, {grpo['wall_s'] / 60:.0f} min; validation BLEU "
                     f"{_figure(first.get('val_bleu'))} -> {_figure(last.get('val_bleu'))}, LAAL "
                     f"{_figure(first.get('val_laal_s'))} -> {_figure(last.get('val_laal_s'))} s")
    _plot_training(phases, codec_history, out / "report_training.png")
    lines += ["", "![training curves](report_training.png)", "", "## Wall time per stage", ""]
    minutes = [None if s.get("seconds") is None else round(s["seconds"] / 60, 1) for s in stages]
    lines += markdown_table(["stage", "minutes", "where"], [[s["stage"], m, s.get("where")] for s, m in zip(stages, minutes)])
    path = out / "REPORT.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="The recipe's output directory.")
    args = parser.parse_args()
    if not args.out.is_dir():
        raise SystemExit(f"error: {args.out} is not a directory: give the recipe's output directory (run.sh's OUT)")
    print(f"report card: {report(args.out)}")


if __name__ == "__main__":
    main()
