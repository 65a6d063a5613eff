"""The report of an evaluation run: summary.json, summary.md and two PNG plots.

Corpus figures: BLEU and ASR-BLEU are corpus scores over every utterance (a missing
output counts as an empty hypothesis); latencies and speaker similarity are means over
the utterances that have a value (counts of those without are reported). ASR-BLEU against
the model's own text, over the utterances that have both, separates what the speech loses
from what the translation gets wrong.
"""

from __future__ import annotations

import json
from pathlib import Path
from statistics import mean

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from eval.bleu import corpus_bleu, normalise  # noqa: E402

LATENCY_KEYS = ("laal_s", "end_offset_s", "start_offset_s", "text_laal_s", "text_end_offset_s", "text_start_offset_s")
TABLE = (  # summary key, column title
    ("utterances", "n"), ("text_bleu", "BLEU"), ("asr_bleu", "ASR-BLEU"), ("laal_s", "LAAL s"),
    ("end_offset_s", "End Offset s"), ("start_offset_s", "Start Offset s"), ("text_laal_s", "text LAAL s"),
    ("text_end_offset_s", "text End Offset s"), ("speaker_sim", "speaker sim"), ("rtf", "RTF"),
)


def summarise(rows: list[dict], run: dict) -> dict:
    summary: dict = {"utterances": len(rows), "source_s": round(sum(r["source_s"] for r in rows), 2),
                     "missing_outputs": sum(r["missing_output"] for r in rows)}
    refs = [r["reference"] for r in rows]
    if any("text" in r for r in rows):
        bleu = corpus_bleu([r.get("text", "") for r in rows], refs)
        summary.update(text_bleu=bleu.score, text_bleu_signature=bleu.signature)
    if any("asr_text" in r for r in rows):
        heard = [normalise(r.get("asr_text", "")) for r in rows]
        bleu = corpus_bleu(heard, [normalise(x) for x in refs])
        summary.update(asr_bleu=bleu.score, asr_bleu_signature=bleu.signature + "|norm:whisper-english",
                       asr_model=run.get("asr_model"))
        spoken = [(h, r["text"]) for h, r in zip(heard, rows) if "text" in r and "asr_text" in r]
        if spoken:  # the speech against the model's own text: words the voice loses, not the translation
            summary["asr_bleu_vs_text"] = corpus_bleu([h for h, _ in spoken], [normalise(t) for _, t in spoken]).score
    for key in (*LATENCY_KEYS, "speaker_sim"):
        values = [r[key] for r in rows if r.get(key) is not None]
        if values:
            summary[key] = round(mean(values), 3)
            summary[f"{key}_missing"] = len(rows) - len(values)
    if run.get("translated_audio_s"):
        summary["rtf"] = round(run["translate_wall_s"] / run["translated_audio_s"], 4)
    summary["run"] = run
    return summary


def markdown(summary: dict) -> str:
    run = summary["run"]
    cells = [_cell(summary.get(key)) for key, _ in TABLE]
    lines = [
        f"# Evaluation: {run.get('system')} on {run.get('dataset')}", "",
        "| " + " | ".join(title for _, title in TABLE) + " |",
        "|" + "---:|" * len(TABLE),
        "| " + " | ".join(cells) + " |", "",
        f"- source audio: {summary['source_s']} s; missing outputs: {summary['missing_outputs']}",
    ]
    for key in ("text_bleu_signature", "asr_bleu_signature", "asr_model"):
        if key in summary:
            lines.append(f"- {key.replace('_', ' ')}: `{summary[key]}`")
    if "asr_bleu_vs_text" in summary:
        lines.append(f"- ASR-BLEU against the model's own text (how much of what it writes its speech says): "
                     f"{summary['asr_bleu_vs_text']}")
    if "rtf" in summary:
        lines.append(f"- real-time factor: {summary['rtf']} (translation wall time / source audio, "
                     f"{run.get('device')}, {run.get('slots')} slots)")
    lines += ["- latencies are means over utterances, seconds of model time (see eval/latency.py)",
              f"- command: `{run.get('command')}`", ""]
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if isinstance(value, float) and abs(value) < 10 else str(value)


def plot(rows: list[dict], summary: dict, out: Path, compare: list[dict] = ()) -> list[Path]:
    """quality_latency.png (per utterance and corpus, with other runs) and latency_distribution.png."""
    paths = [out / "quality_latency.png", out / "latency_distribution.png"]
    fig, ax = plt.subplots(figsize=(7, 5))
    for prefix, quality, label, color in (("", "asr_bleu", "ASR-BLEU / speech LAAL", "tab:blue"),
                                          ("text_", "text_bleu", "BLEU / text-stream LAAL", "tab:orange")):
        points = [(r[f"{prefix}laal_s"], r[quality]) for r in rows if r.get(f"{prefix}laal_s") is not None and quality in r]
        if points:
            ax.scatter(*zip(*points), s=12, alpha=0.4, color=color, label=f"utterances: {label}")
        if summary.get(f"{prefix}laal_s") is not None and quality in summary:
            ax.scatter(summary[f"{prefix}laal_s"], summary[quality], s=120, marker="*", color=color,
                       edgecolor="black", label=f"corpus: {label}")
    for other in compare:
        name = other["run"].get("system", "?")
        if other.get("laal_s") is not None and "asr_bleu" in other:
            ax.scatter(other["laal_s"], other["asr_bleu"], s=80, marker="D", edgecolor="black")
            ax.annotate(name, (other["laal_s"], other["asr_bleu"]), textcoords="offset points", xytext=(5, 5))
    ax.set(xlabel="LAAL (s)", ylabel="BLEU", title=f"Quality vs latency: {summary['run'].get('system')}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, title in ((axes[0], "laal", "LAAL"), (axes[1], "end_offset", "End Offset")):
        for prefix, label in (("", "speech (ASR word times)"), ("text_", "text stream")):
            values = [r[f"{prefix}{key}_s"] for r in rows if r.get(f"{prefix}{key}_s") is not None]
            if values:
                ax.hist(values, bins=20, alpha=0.6, label=label)
        ax.set(xlabel=f"{title} (s)", ylabel="utterances", title=f"{title} per utterance")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(paths[1], dpi=110)
    plt.close(fig)
    return paths


def write_report(rows: list[dict], run: dict, out: Path, compare_dirs: list[Path] = ()) -> dict:
    summary = summarise(rows, run)
    compare = [json.loads((d / "summary.json").read_text()) for d in compare_dirs]
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "summary.md").write_text(markdown(summary))
    summary["plots"] = [str(p) for p in plot(rows, summary, out, compare)]
    return summary
