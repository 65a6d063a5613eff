"""Prepared examples -> model input batches.

Parts are read as a streaming `datasets` dataset (a 1000 h run never loads them into
memory), split between processes with `split_dataset_by_node`, shuffled through a
buffer, and resumable through the dataset's own `state_dict`.

A batch is moshi's multistream layout [B, 1 + dep_q + n_src, T]: text, generated target
audio, source audio. Frames past an example's end hold moshi's zero token (-1), which the
model embeds as nothing and `LMModel.forward` masks out of the loss.
"""

from __future__ import annotations

from pathlib import Path

import datasets
import torch
from datasets.distributed import split_dataset_by_node

from hibiki.tokens import ZERO_TOKEN


def open_examples(data: str | Path, rank: int = 0, world_size: int = 1, shuffle_buffer: int = 0, seed: int = 0,
                  repeat: bool = True) -> datasets.IterableDataset:
    """`data`: a directory of prepared parts, or several joined by commas (corpora prepared apart, trained on as one)."""
    files = []
    for directory in str(data).split(","):
        found = sorted(str(p) for p in Path(directory).glob("part-*.parquet"))
        if not found:
            raise FileNotFoundError(f"no prepared parts (part-*.parquet) in {directory!r}; run training.prepare first")
        files += found
    dataset = datasets.load_dataset("parquet", data_files=files, split="train", streaming=True)
    dataset = dataset.select_columns(["id", "n_frames", "source_end_frame", "text_tokens", "target_codes", "source_codes",
                                      "target_text", "sentences"])
    if world_size > 1:
        dataset = split_dataset_by_node(dataset, rank=rank, world_size=world_size)
    if shuffle_buffer > 0:
        dataset = dataset.shuffle(seed=seed, buffer_size=shuffle_buffer)
    if repeat:
        dataset = dataset.repeat(None)
    return dataset


def collate(examples: list[dict], max_frames: int) -> torch.Tensor:
    """Long tensor [B, K, T]: T = the longest example, cropped to `max_frames`."""
    length = min(max_frames, max(e["n_frames"] for e in examples))
    rows = []
    for e in examples:
        streams = torch.cat([torch.tensor(e["text_tokens"], dtype=torch.long)[None],
                             torch.tensor(e["target_codes"], dtype=torch.long),
                             torch.tensor(e["source_codes"], dtype=torch.long)])[:, :length]
        pad = torch.full((streams.shape[0], length - streams.shape[1]), ZERO_TOKEN, dtype=torch.long)
        rows.append(torch.cat([streams, pad], dim=1))
    return torch.stack(rows)


def batches(dataset: datasets.IterableDataset, batch_size: int, max_frames: int):
    """Yields (codes, examples) forever (the dataset repeats)."""
    buffer: list[dict] = []
    for example in dataset:
        buffer.append(example)
        if len(buffer) == batch_size:
            yield collate(buffer, max_frames), buffer
            buffer = []
