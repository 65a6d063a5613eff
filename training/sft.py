"""Supervised stage: multistream cross-entropy on prepared examples, from a base checkpoint.

    python -m training.sft CONFIG.yaml [key=value ...]                     one process (CPU or GPU)
    accelerate launch --num_processes 8 -m training.sft CONFIG.yaml ...    data parallel (DDP)
    torchrun --nproc_per_node 2 -m training.sft CONFIG.yaml ...            same, gloo on CPU

Full fine-tuning or LoRA (moshi's adapters, merged into the saved weights), bf16 autocast
on GPU, optional gradient checkpointing. Checkpoints are Kyutai-format directories under
OUT/checkpoints; a killed run started again with the same command resumes from the last
one (training/checkpoints.py). Losses, learning rate and decoded validation samples go to
tensorboard (OUT/sft) and the log.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from moshi.modules.lora import replace_all_linear_with_lora
from tqdm import tqdm

from hibiki.checkpoint import load_checkpoint
from hibiki.default_model import default_model
from hibiki.tokens import SILENT_TEXT_IDS
from training.batches import batches, collate, open_examples
from training.checkpoints import BEST, prune, read_record, save_kyutai, write_record
from training.config import run_script
from training.loss import LossWeights, combine, loss_parts

logger = logging.getLogger("hibiki.sft")


@dataclass
class SFTConfig:
    data: str = "???"  # directory of prepared parts (training.prepare); several joined by commas
    val_data: str | None = None
    model: str | None = None  # base checkpoint (default: the embedded model)
    out: str = "out/sft"
    max_steps: int = 1000
    batch_size: int = 8  # per process
    grad_accum: int = 1
    max_frames: int = 1500  # longer examples are cropped
    lr: float = 3e-5
    weight_decay: float = 0.1
    warmup_steps: int = 50
    grad_clip: float = 1.0
    lora: bool = False
    lora_rank: int = 64
    lora_scaling: float = 2.0
    gradient_checkpointing: bool = False
    mixed_precision: str = "auto"  # auto = bf16 on CUDA, none on CPU; or no / bf16 / fp16
    loss: LossWeights = field(default_factory=LossWeights)
    shuffle_buffer: int = 256
    seed: int = 0
    log_every: int = 10
    eval_every: int = 200
    eval_batches: int = 4
    decode_samples: int = 2
    save_every: int = 200
    keep_checkpoints: int = 3
    keep_states: int = 1
    save_dtype: str = "float32"  # or bfloat16


def learning_rate(step: int, config: SFTConfig) -> float:
    """Linear warm-up then cosine decay to 10%, as a multiplier of `lr`."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def add_lora(lm: torch.nn.Module, rank: int, scaling: float) -> None:
    """moshi's LoRA adapters on every linear layer; only they train (merged back at save)."""
    replace_all_linear_with_lora(lm, rank, scaling)
    for name, param in lm.named_parameters():
        param.requires_grad = "lora_" in name


class Trainer:
    def __init__(self, config: SFTConfig) -> None:
        self.config = config
        self.out = Path(config.out)
        precision = config.mixed_precision
        if precision == "auto":
            precision = "bf16" if torch.cuda.is_available() else "no"
        # cpu=True where there is no GPU: accelerate only sets up gloo data parallelism then.
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=precision,
                                       gradient_accumulation_steps=config.grad_accum,
                                       log_with="tensorboard", project_dir=str(self.out))
        set_seed(config.seed)
        self.base = load_checkpoint(config.model or default_model(), device="cpu", dtype=torch.float32,
                                    lm_overrides={"gradient_checkpointing": config.gradient_checkpointing})
        lm = self.base.lm
        if config.lora:
            add_lora(lm, config.lora_rank, config.lora_scaling)
        lm.train()
        self.params = [p for p in lm.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(self.params, lr=config.lr, weight_decay=config.weight_decay, betas=(0.9, 0.95))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: learning_rate(step, config))
        # The schedule counts optimizer steps of the whole run: kept out of accelerate.prepare,
        # which would step it once per process.
        self.model, self.optimizer = self.accelerator.prepare(lm, optimizer)
        self.scheduler = scheduler
        self.accelerator.register_for_checkpointing(scheduler)
        self.lm = self.accelerator.unwrap_model(self.model)
        a = self.accelerator
        self.dataset = open_examples(config.data, a.process_index, a.num_processes, config.shuffle_buffer, config.seed)
        self.step = 0
        latest = read_record(self.out)
        if latest is not None:
            a.load_state(latest["state"])
            self.dataset.load_state_dict(json.loads((Path(latest["state"]) / f"data-rank{a.process_index}.json").read_text()))
            self.step = latest["step"]
            logger.info("resumed from step %d (%s)", self.step, latest["state"])
        self.val = self._validation_batches()

    def _validation_batches(self) -> list[tuple[torch.Tensor, list[dict]]]:
        c = self.config
        if not c.val_data or not self.accelerator.is_main_process:
            return []
        examples = list(open_examples(c.val_data, repeat=False).take(c.eval_batches * c.batch_size))
        return [(collate(examples[i:i + c.batch_size], c.max_frames), examples[i:i + c.batch_size])
                for i in range(0, len(examples), c.batch_size)]

    def train(self) -> dict:
        c, a = self.config, self.accelerator
        a.init_trackers("sft", config={k: v for k, v in _flat(asdict(c)).items() if v is not None})
        data = batches(self.dataset, c.batch_size, c.max_frames)
        history: list[dict] = []
        frames, start = 0, time.perf_counter()
        bar = tqdm(total=c.max_steps, initial=self.step, desc="sft", unit="step", disable=not a.is_main_process or None)
        while self.step < c.max_steps:
            for _ in range(c.grad_accum):
                codes, _ = next(data)
                codes = codes.to(a.device)
                frames += int((codes[:, 0] >= 0).sum())
                with a.accumulate(self.model), a.autocast():
                    parts = loss_parts(self.model(codes, self.base.conditions(len(codes))), self.lm, codes, c.loss)
                    text_total = a.reduce(parts.text_weight, "sum")
                    audio_total = a.reduce(parts.audio_weight, "sum")
                    # DDP averages gradients over processes; global totals make that the one-process gradient.
                    a.backward(combine(parts, text_total, audio_total, c.loss) * a.num_processes)
                    if a.sync_gradients and c.grad_clip > 0:
                        a.clip_grad_norm_(self.params, c.grad_clip)
                    self.optimizer.step()
                    self.optimizer.zero_grad()
            self.scheduler.step()
            self.step += 1
            bar.update(1)
            text_loss = (a.reduce(parts.text_sum.detach(), "sum") / text_total).item()
            audio_loss = (a.reduce(parts.audio_sum.detach(), "sum") / audio_total).item()
            record = {"step": self.step, "text_loss": text_loss, "audio_loss": audio_loss, "lr": self.scheduler.get_last_lr()[0]}
            history.append(record)
            if self.step % c.log_every == 0 or self.step == 1:
                elapsed = time.perf_counter() - start
                record["frames_per_s"] = frames * a.num_processes / elapsed
                a.log({f"train/{k}": v for k, v in record.items() if k != "step"}, step=self.step)
                bar.set_postfix(text=f"{text_loss:.3f}", audio=f"{audio_loss:.3f}")
            if self.val and (self.step % c.eval_every == 0 or self.step == c.max_steps):
                record.update(self.validate())
            if self.step % c.save_every == 0 or self.step == c.max_steps:
                self.save(record.get("val_text_loss"))
        bar.close()
        a.end_training()
        elapsed = time.perf_counter() - start
        return {"steps": self.step, "history": history, "checkpoint": str(self.out / "checkpoints" / f"step-{self.step:06d}"),
                "frames_per_s": frames * a.num_processes / max(elapsed, 1e-9), "wall_s": elapsed}

    @torch.no_grad()
    def validate(self) -> dict:
        """Validation loss, and teacher-forced greedy text of a few examples next to their reference."""
        c, lm = self.config, self.lm
        lm.eval()
        sums = torch.zeros(5)
        samples = []
        for codes, examples in self.val:
            codes = codes.to(self.accelerator.device)
            output = lm(codes, self.base.conditions(len(codes)))
            parts = loss_parts(output, lm, codes, c.loss)
            # The same targets with every example hearing another one's source: a model that
            # listens does much worse; one that only continues its own English does not.
            swapped = codes.clone()
            swapped[:, 1 + lm.dep_q:] = codes[:, 1 + lm.dep_q:].roll(1, dims=0)
            other = loss_parts(lm(swapped, self.base.conditions(len(codes))), lm, codes, c.loss)
            sums += torch.stack([parts.text_sum, parts.audio_sum, parts.text_weight, parts.audio_weight,
                                 other.text_sum]).float().cpu()
            if len(samples) < c.decode_samples:
                text = output.text_logits[:, 0].nan_to_num().argmax(-1)
                for row, example in zip(text.tolist(), examples):
                    hypothesis = self.base.tokenizer.decode([t for t in row if t not in SILENT_TEXT_IDS])
                    samples.append(f"ref: {example['target_text']}\n\nout: {hypothesis}")
        lm.train()
        result = {"val_text_loss": (sums[0] / sums[2]).item(), "val_audio_loss": (sums[1] / sums[3]).item(),
                  "val_text_loss_other_source": (sums[4] / sums[2]).item()}
        self.accelerator.log({f"val/{k[4:]}": v for k, v in result.items()}, step=self.step)
        tracker = self.accelerator.get_tracker("tensorboard", unwrap=True)
        for i, sample in enumerate(samples[:c.decode_samples]):
            tracker.add_text(f"val/sample{i}", sample, self.step)
            logger.info("step %d sample %d: %s", self.step, i, sample.replace("\n\n", " | "))
        logger.info("step %d: val text loss %.3f, audio loss %.3f; text loss with another example's source %.3f",
                    self.step, *result.values())
        return result

    def save(self, val_text_loss: float | None = None) -> None:
        """Saves this step; `val_text_loss` is this step's validation, if it ran."""
        a, c = self.accelerator, self.config
        state = self.out / "state" / f"step-{self.step:06d}"
        a.wait_for_everyone()
        a.save_state(str(state))
        (state / f"data-rank{a.process_index}.json").write_text(json.dumps(self.dataset.state_dict()))
        a.wait_for_everyone()
        if a.is_main_process:
            checkpoint = save_kyutai(self.lm, self.base, self.out / "checkpoints" / f"step-{self.step:06d}",
                                     getattr(torch, c.save_dtype))
            write_record(self.out, {"step": self.step, "state": str(state), "checkpoint": str(checkpoint)})
            best = self._update_best(checkpoint, val_text_loss)
            prune(self.out / "state", c.keep_states)
            prune(self.out / "checkpoints", c.keep_checkpoints, spare=Path(best["checkpoint"]) if best else None)
        a.wait_for_everyone()

    def _update_best(self, checkpoint: Path, val_text_loss: float | None) -> dict | None:
        """OUT/best.json: a small model trained from scratch on a small corpus overfits (the
        demo's validation text loss rose again after ~3 epochs), so the last checkpoint is not
        always the one to continue from or to ship."""
        best = read_record(self.out, BEST)
        if val_text_loss is not None and (best is None or val_text_loss < best["val_text_loss"]):
            best = {"step": self.step, "val_text_loss": val_text_loss, "checkpoint": str(checkpoint)}
            write_record(self.out, best, BEST)
        return best


def _flat(d: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in d.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def main(argv: list[str] | None = None) -> None:
    config, trainer = run_script(SFTConfig, __doc__, Trainer, argv=argv)  # a bad config or missing data fails here, before training
    result = trainer.train()
    if trainer.accelerator.is_main_process:
        last = result["history"][-1] if result["history"] else {}
        (Path(config.out) / "train_summary.json").write_text(json.dumps(result, indent=1) + "\n")
        print(f"trained to step {result['steps']} in {result['wall_s']:.0f} s ({result['frames_per_s']:.0f} frames/s); "
              f"last text loss {last.get('text_loss', float('nan')):.3f}, audio loss {last.get('audio_loss', float('nan')):.3f}; "
              f"checkpoint {result['checkpoint']}")


if __name__ == "__main__":
    main()
