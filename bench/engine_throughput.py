"""Throughput of the batched streaming engine: frames/s and real-time streams per batch size.

Every slot is kept busy (input always buffered) so each tick steps the whole batch; a
batch keeps all of its B streams in real time when a tick takes at most 80 ms (p95).

    python bench/engine_throughput.py --preset small --slots 1 4 16 64
    python bench/engine_throughput.py --model kyutai/hibiki-zero-3b-pytorch-bf16 --device cuda
    python bench/engine_throughput.py --model hibiki/default_model --slots 16 --threads 1 --pipeline  # CPU
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hibiki.audio import FRAME_SIZE
from hibiki.checkpoint import load_checkpoint
from hibiki.engine import BatchedTranslator
from hibiki.presets import PRESET_NAMES
from hibiki.random_checkpoint import build_random_checkpoint

FRAME_MS = 80.0


def machine() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (CUDA {torch.version.cuda}), torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def bench_one(model: Path | str, device: str, slots: int, steps: int, warmup: int, pipeline: bool) -> dict:
    torch.manual_seed(0)
    cuda = torch.device(device).type == "cuda"
    if cuda:  # the previous batch size's checkpoint, caches and graphs are gone
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    translator = BatchedTranslator(load_checkpoint(model, device=device), slots=slots, pipeline=pipeline)
    source = (np.random.default_rng(0).standard_normal(FRAME_SIZE * (steps + warmup + 2)) * 0.1).astype(np.float32)
    for _ in range(slots):
        translator.feed(translator.attach(), source)
    times = []
    for i in range(steps + warmup):
        start = time.perf_counter()
        translator.step()
        if cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1000)
    median, p95 = np.percentile(times, [50, 95])
    return dict(slots=slots, median_ms=median, p95_ms=p95, frames_per_s=slots * 1000 / np.mean(times),
                realtime_streams=slots if p95 <= FRAME_MS else 0,
                gpu_peak_gb=torch.cuda.max_memory_allocated() / 2**30 if cuda else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", default="small", choices=PRESET_NAMES, help="random-weight model of this preset")
    source.add_argument("--model", help="checkpoint directory or hub repo id instead of a preset")
    parser.add_argument("--slots", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--steps", type=int, default=50, help="timed ticks per batch size")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--pipeline", action="store_true", help="Mimi encoder, LM and Mimi decoder on three threads, a tick apart")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (per engine thread; 0: torch's default)")
    parser.add_argument("--json", type=Path, help="also write the rows here (for bench/gpu_check.py)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or build_random_checkpoint(Path(tmp) / args.preset, args.preset)
        rows = []
        for slots in tqdm(args.slots, desc="batch sizes"):
            try:
                rows.append(bench_one(model, args.device, slots, args.steps, args.warmup, args.pipeline))
            except torch.cuda.OutOfMemoryError:
                tqdm.write(f"{slots} slots: out of device memory; larger batch sizes skipped")
                break
    name = args.model or f"preset '{args.preset}' (random weights)"
    print(f"\nmodel: {name}; device: {args.device}; {'pipelined' if args.pipeline else 'sequential'}; "
          f"machine: {machine()}")
    print("| slots | tick median ms | tick p95 ms | frames/s | streams in real time | GPU peak GiB |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        gpu = "-" if r["gpu_peak_gb"] is None else f"{r['gpu_peak_gb']:.1f}"
        print(f"| {r['slots']} | {r['median_ms']:.1f} | {r['p95_ms']:.1f} | {r['frames_per_s']:.0f} | {r['realtime_streams']} | {gpu} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    best = max((r["realtime_streams"] for r in rows), default=0)
    print(f"\nmost concurrent real-time streams among the batch sizes tried: {best}")


if __name__ == "__main__":
    main()
