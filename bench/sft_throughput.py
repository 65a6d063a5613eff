"""Supervised-stage throughput: frames and predicted tokens per second of training.

Times forward + backward + AdamW steps of the multistream loss on random codes shaped
like prepared examples, for a named preset (hibiki.presets) or a checkpoint directory,
on the CPU or a GPU (bf16 autocast there). Tokens = frames x (1 text + dep_q audio
codebooks), the tokens the loss predicts.

    .venv/bin/python bench/sft_throughput.py --preset small --batch-size 4 --frames 250 --steps 5
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import nullcontext

import torch

from hibiki.checkpoint import load_checkpoint
from hibiki.presets import build_random_checkpoint
from training.loss import LossWeights, loss_parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="small", help="Preset name, ignored when --model is given.")
    parser.add_argument("--model", help="Checkpoint directory instead of a random preset.")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--frames", type=int, default=250, help="Frames per example (80 ms each).")
    parser.add_argument("--steps", type=int, default=5, help="Timed steps (after one warm-up step).")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or build_random_checkpoint(f"{tmp}/ckpt", args.preset)
        checkpoint = load_checkpoint(model, device=args.device, dtype=torch.float32,
                                     lm_overrides={"gradient_checkpointing": args.gradient_checkpointing})
    lm = checkpoint.lm.train()
    optimizer = torch.optim.AdamW(lm.parameters(), lr=1e-5)
    text = torch.randint(0, lm.text_card, (args.batch_size, 1, args.frames))
    audio = torch.randint(0, lm.card, (args.batch_size, lm.n_q, args.frames))
    codes = torch.cat([text, audio], dim=1).to(args.device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if args.device.startswith("cuda") else nullcontext()
    weights = LossWeights()

    def step() -> None:
        with autocast:
            parts = loss_parts(lm(codes), lm, codes, weights)
            loss = parts.text_sum / parts.text_weight + parts.audio_sum / parts.audio_weight
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step()
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    elapsed = (time.perf_counter() - start) / args.steps
    frames = args.batch_size * args.frames
    tokens = frames * (1 + lm.dep_q)
    params = sum(p.numel() for p in lm.parameters()) / 1e6
    print(f"{model if args.model else args.preset}: {params:.1f}M LM parameters, {args.device}, "
          f"batch {args.batch_size} x {args.frames} frames: "
          f"{elapsed * 1000:.0f} ms/step, {frames / elapsed:.0f} frames/s, {tokens / elapsed:.0f} tokens/s "
          f"({frames * 0.08 / elapsed:.2f} h of aligned audio per hour per device)")


if __name__ == "__main__":
    main()
