"""Per-utterance scores: the row of `rows.jsonl` for one source and one system output."""

from __future__ import annotations

from eval.asr import Transcriber
from eval.bleu import normalise, sentence_bleu
from eval.dataset import EvalItem
from eval.latency import end_offset, laal, start_offset
from eval.outputs import Output
from eval.speaker import SpeakerSimilarity
from hibiki.audio import SAMPLE_RATE
from hibiki.words import Word


def latency_fields(prefix: str, words: list[Word] | None, source_s: float, reference: str) -> dict:
    if words is None:
        return {}
    ends = [w.end for w in words]
    return {f"{prefix}laal_s": _round(laal(ends, source_s, len(reference.split()))),
            f"{prefix}end_offset_s": _round(end_offset(ends, source_s)),
            f"{prefix}start_offset_s": _round(start_offset([w.start for w in words]))}


def score_item(item: EvalItem, output: Output, asr: Transcriber | None, speaker: SpeakerSimilarity | None) -> dict:
    source_s = len(item.pcm) / SAMPLE_RATE
    row = {"id": item.id, "source_s": round(source_s, 3), "reference": item.reference, "source_text": item.source_text,
           "missing_output": output.pcm is None and output.text is None}
    if output.text is not None:
        row["text"] = output.text
        row["text_bleu"] = sentence_bleu(output.text, item.reference)
        row.update(latency_fields("text_", output.text_words, source_s, item.reference))
        if output.text_words is not None:
            row["text_words"] = [w.as_dict() for w in output.text_words]
    if output.pcm is not None:
        row["output_s"] = round(len(output.pcm) / SAMPLE_RATE, 3)
        if asr is not None:
            transcript = asr.transcribe(output.pcm)
            row["asr_text"] = transcript.text
            row["asr_bleu"] = sentence_bleu(normalise(transcript.text), normalise(item.reference))
            row.update(latency_fields("", transcript.words, source_s, item.reference))
            row["asr_words"] = [w.as_dict() for w in transcript.words]
        if speaker is not None:
            row["speaker_sim"] = speaker.similarity(item.pcm, output.pcm)
    return row


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
