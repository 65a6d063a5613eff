"""GRPO stage: lower a supervised checkpoint's latency with a BLEU-only reward (Hibiki-Zero).

    python -m training.grpo.train CONFIG.yaml [key=value ...]                  (--help lists the keys)
    accelerate launch --num_processes 8 -m training.grpo.train CONFIG.yaml ...

Per step, each process takes `per_device_train_batch_size` prepared sources and samples
`num_generations` rollouts of each with the current policy (training/grpo/rollout.py),
scores them at source checkpoints (rewards.py), and makes `num_iterations` clipped policy
updates against those rollouts' log-probs (loss.py): the old policy is refreshed every
`num_iterations` updates. Field names follow trl's GRPOConfig where they mean the same.

Every `eval_every` steps, greedy translations of the validation sources give text BLEU,
LAAL and End Offset (text-stream word times). OUT/best keeps the checkpoint with the
lowest LAAL among those whose BLEU is at most `max_bleu_loss` points below the starting
checkpoint's (the stage's goal: earlier at the same quality; the start itself when no
update qualifies), OUT/last the last one.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm import tqdm

from eval.bleu import corpus_bleu
from eval.latency import end_offset, laal
from hibiki.audio import FRAME_PERIOD_S
from hibiki.checkpoint import load_checkpoint
from hibiki.sampling import Sampling
from hibiki.tokens import ZERO_TOKEN
from hibiki.words import Word, words_from_tokens
from training.batches import open_examples
from training.checkpoints import save_kyutai
from training.config import run_script
from training.grpo.loss import PolicyLossConfig, policy_loss
from training.grpo.rewards import checkpoint_frames, checkpoints, group_advantages, rollout_rewards
from training.grpo.rollout import policy_logprobs, sample_rollouts

logger = logging.getLogger("hibiki.grpo")


@dataclass
class GRPOStageConfig:
    model: str = "???"  # the supervised checkpoint
    data: str = "???"  # prepared parts (training.prepare); several directories joined by commas
    val_data: str | None = None
    out: str = "out/grpo"
    max_steps: int = 2000
    per_device_train_batch_size: int = 8  # sources per step and process
    num_generations: int = 4  # G rollouts per source
    num_iterations: int = 2  # policy updates per batch of rollouts (old-policy refresh interval)
    learning_rate: float = 1e-6
    sampling: Sampling = field(default_factory=lambda: Sampling(temp=0.8, top_k=250, temp_text=0.8, top_k_text=250))
    reward_every_words: int = 8  # a checkpoint at the end of every n-th source word
    reward_mix: float = 0.5  # lambda: intermediate vs final BLEU
    loss: PolicyLossConfig = field(default_factory=PolicyLossConfig)
    eval_every: int = 100
    eval_examples: int = 64
    max_bleu_loss: float = 1.0  # OUT/best: lowest validation LAAL within this many BLEU points of the start
    seed: int = 0


def source_words(sentences: list[dict]) -> list[Word]:
    """Source word times from sentence spans and transcripts, by character share within each span
    (the translation stands in for a missing transcript: only the checkpoint count depends on it)."""
    words = []
    for s in sentences:
        tokens = (s.get("text") or s["translation"]).split()
        total = sum(len(t) for t in tokens) or 1
        at = s["source_start"]
        for token in tokens:
            length = (s["source_end"] - s["source_start"]) * len(token) / total
            words.append(Word(token, round(at, 3), round(at + length, 3)))
            at += length
    return words


def example_marks(example: dict, every: int):
    sentences = json.loads(example["sentences"])
    source_end = example["source_end_frame"] * FRAME_PERIOD_S
    return checkpoints(source_words(sentences), [(s["source_start"], s["translation"]) for s in sentences], every, source_end)


class GRPOTrainer:
    def __init__(self, config: GRPOStageConfig) -> None:
        self.config = config
        self.out = Path(config.out)
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available())
        set_seed(config.seed + self.accelerator.process_index)
        self.base = load_checkpoint(config.model, device="cpu", dtype=torch.float32)
        optimizer = torch.optim.AdamW(self.base.lm.parameters(), lr=config.learning_rate, weight_decay=0.0)
        self.model, self.optimizer = self.accelerator.prepare(self.base.lm, optimizer)
        self.lm = self.accelerator.unwrap_model(self.model)
        a = self.accelerator
        self.data = iter(open_examples(config.data, a.process_index, a.num_processes, shuffle_buffer=256, seed=config.seed))
        self.val = list(open_examples(config.val_data, repeat=False).take(config.eval_examples)) if config.val_data else []
        self.start_bleu: float | None = None  # validation BLEU of the starting checkpoint (step 0)
        self.best: dict | None = None

    def group(self, example: dict, codes: torch.Tensor, logprobs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One source's G rollouts -> (codes, old log-probs, advantages, mean reward per rollout)."""
        c = self.config
        frames = example["n_frames"]
        codes, logprobs = codes[:, :, :frames], logprobs[:, :, :frames]
        marks = example_marks(example, c.reward_every_words)
        rewards = torch.from_numpy(np.stack(
            [rollout_rewards(words_from_tokens(self.base.tokenizer, text.tolist()), marks, example["target_text"], c.reward_mix)
             for text in codes[:, 0]]))
        advantages = group_advantages(rewards, checkpoint_frames(marks), frames)
        return codes, logprobs, advantages.float(), rewards.mean(dim=1).tolist()

    def step(self) -> dict:
        c, a = self.config, self.accelerator
        self.lm.eval()
        batch = [next(self.data) for _ in range(c.per_device_train_batch_size)]
        sources = [torch.tensor(e["source_codes"], dtype=torch.long) for e in batch for _ in range(c.num_generations)]
        rollout = sample_rollouts(self.base, sources, c.sampling)
        g = c.num_generations
        groups = [self.group(e, rollout.codes[i * g:(i + 1) * g], rollout.logprobs[i * g:(i + 1) * g]) for i, e in enumerate(batch)]
        self.lm.train()
        losses, clips = [], []
        for _ in range(c.num_iterations):
            self.optimizer.zero_grad()
            for codes, old, advantages, _ in groups:
                logprobs, mask = policy_logprobs(self.model, self.lm, codes.to(a.device))
                loss, metrics = policy_loss(logprobs, old.to(a.device), advantages.to(a.device), mask, c.loss)
                a.backward(loss / len(groups))
                losses.append(loss.item())
                clips.append(metrics["clip_fraction"])
            self.optimizer.step()
        rewards = [r for *_, rs in groups for r in rs]
        return {"reward": mean(rewards), "loss": mean(losses), "clip_fraction": mean(clips)}

    @torch.no_grad()
    def validate(self) -> dict:
        """Greedy streaming translations of the validation sources: text BLEU, LAAL, End Offset."""
        self.lm.eval()
        hypotheses, references, lags, ends = [], [], [], []
        sources = [torch.tensor(e["source_codes"], dtype=torch.long) for e in self.val]
        rollout = sample_rollouts(self.base, sources, Sampling(greedy=True))
        for example, text in zip(self.val, rollout.codes[:, 0]):
            tokens = [t for t in text.tolist() if t != ZERO_TOKEN]
            words = words_from_tokens(self.base.tokenizer, tokens)
            source_s = example["source_end_frame"] * FRAME_PERIOD_S
            hypotheses.append(" ".join(w.text for w in words))
            references.append(example["target_text"])
            delays = [w.end for w in words]
            if delays:
                lags.append(laal(delays, source_s, len(example["target_text"].split())))
                ends.append(end_offset(delays, source_s))
        self.lm.train()
        return {"val_bleu": corpus_bleu(hypotheses, references).score, "val_laal_s": mean(lags) if lags else None,
                "val_end_offset_s": mean(ends) if ends else None}

    def validate_and_keep(self, record: dict) -> dict:
        """Validate, log and keep: step 0 too, since `best` is judged against the start."""
        record.update(self.validate())
        self.keep(record)
        logger.info("step %d: %s", record["step"], {k: round(v, 3) for k, v in record.items() if isinstance(v, float)})
        return record

    def keep(self, record: dict) -> None:
        if self.start_bleu is None:
            self.start_bleu = record["val_bleu"]
        laal_s = record.get("val_laal_s")
        eligible = laal_s is not None and record["val_bleu"] >= self.start_bleu - self.config.max_bleu_loss
        # The start is kept first, so that `best` exists even when no validation has a LAAL (a
        # model that writes no words); an update replaces it only by an eligible, earlier one.
        better = self.best is None or (eligible and (self.best["val_laal_s"] is None or (
            (laal_s, -record["val_bleu"]) < (self.best["val_laal_s"], -self.best["val_bleu"]))))
        if better:
            self.best = record
        if self.accelerator.is_main_process:
            save_kyutai(self.lm, self.base, self.out / "last", None)
            if better:
                save_kyutai(self.lm, self.base, self.out / "best", None)
                (self.out / "best.json").write_text(json.dumps(record, indent=2) + "\n")

    def train(self) -> dict:
        c, a = self.config, self.accelerator
        self.out.mkdir(parents=True, exist_ok=True)
        history = []
        if self.val:
            history.append(self.validate_and_keep({"step": 0}))
        start = time.perf_counter()
        for step in tqdm(range(1, c.max_steps + 1), desc="grpo", unit="step", disable=not a.is_main_process or None):
            record = {"step": step, **self.step()}
            if self.val and (step % c.eval_every == 0 or step == c.max_steps):
                self.validate_and_keep(record)
            history.append(record)
        result = {"history": history, "wall_s": time.perf_counter() - start, "config": asdict(c)}
        if a.is_main_process:
            (self.out / "grpo_summary.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
        return result


def main(argv: list[str] | None = None) -> None:
    config, result = run_script(GRPOStageConfig, __doc__, lambda c: GRPOTrainer(c).train(), argv=argv)
    first, last = result["history"][0], result["history"][-1]
    print(f"GRPO: {len(result['history'])} records in {result['wall_s']:.0f} s; validation BLEU {first.get('val_bleu')} -> "
          f"{last.get('val_bleu')}, LAAL {first.get('val_laal_s')} -> {last.get('val_laal_s')}; best kept in {Path(config.out) / 'best'}")


if __name__ == "__main__":
    main()
