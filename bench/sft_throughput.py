"""Supervised-stage throughput: frames and predicted tokens per second of training.

Times forward + backward + AdamW steps of the multistream loss on random codes shaped
like prepared examples, for a named preset (hibiki.presets) or a checkpoint directory,
on the CPU or a GPU (bf16 autocast there). Tokens = frames x (1 text + dep_q audio
codebooks), the tokens the loss predicts.

    .venv/bin/python bench/sft_throughput.py --preset small --batch-size 4 --frames 250 --steps 5
    python bench/sft_throughput.py --preset hibiki-zero-3b --lora --device cuda   # Zero's shape, LoRA
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from hibiki.audio import FRAME_PERIOD_S
from hibiki.checkpoint import load_checkpoint
from hibiki.random_checkpoint import build_random_checkpoint
from training.loss import LossWeights, loss_parts
from training.sft import add_lora


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="small", help="Preset name, ignored when --model is given.")
    parser.add_argument("--model", help="Checkpoint directory instead of a random preset.")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--frames", type=int, default=250, help="Frames per example (80 ms each).")
    parser.add_argument("--steps", type=int, default=5, help="Timed steps (after one warm-up step).")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--lora", action="store_true", help="Train LoRA adapters only (training.sft's lora=true).")
    parser.add_argument("--lora-rank", type=int, default=64)
    parser.add_argument("--reduced", action="store_true", help="A Kyutai preset at reduced width/depth (smoke runs).")
    parser.add_argument("--json", type=Path, help="Also write the figures here (for bench/gpu_check.py).")
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or build_random_checkpoint(f"{tmp}/ckpt", args.preset, reduced=args.reduced)
        checkpoint = load_checkpoint(model, device=args.device, dtype=torch.float32,
                                     lm_overrides={"gradient_checkpointing": args.gradient_checkpointing})
    lm = checkpoint.lm
    if args.lora:
        add_lora(lm, args.lora_rank, scaling=2.0)
        lm.to(args.device)  # the adapters are created on the CPU
    lm.train()
    optimizer = torch.optim.AdamW([p for p in lm.parameters() if p.requires_grad], lr=1e-5)
    text = torch.randint(0, lm.text_card, (args.batch_size, 1, args.frames))
    audio = torch.randint(0, lm.card, (args.batch_size, lm.n_q, args.frames))
    codes = torch.cat([text, audio], dim=1).to(args.device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()
    weights = LossWeights()

    def step() -> None:
        with autocast:
            parts = loss_parts(lm(codes, checkpoint.conditions(len(codes))), lm, codes, weights)
            loss = parts.text_sum / parts.text_weight + parts.audio_sum / parts.audio_weight
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step()
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    elapsed = (time.perf_counter() - start) / args.steps
    frames = args.batch_size * args.frames
    tokens = frames * (1 + lm.dep_q)
    params = sum(p.numel() for p in lm.parameters()) / 1e6
    peak_gb = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    print(f"{model if args.model else args.preset}: {params:.1f}M LM parameters, {args.device}, "
          f"{'LoRA' if args.lora else 'full'}, batch {args.batch_size} x {args.frames} frames: "
          f"{elapsed * 1000:.0f} ms/step, {frames / elapsed:.0f} frames/s, {tokens / elapsed:.0f} tokens/s "
          f"({frames * FRAME_PERIOD_S / elapsed:.2f} h of aligned audio per hour per device)"
          + ("" if peak_gb is None else f", GPU peak {peak_gb:.1f} GiB"))
    if args.json:
        args.json.write_text(json.dumps(dict(steps_per_s=1 / elapsed, frames_per_s=frames / elapsed,
                                             params_m=params, gpu_peak_gb=peak_gb)))


if __name__ == "__main__":
    main()
