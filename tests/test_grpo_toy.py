"""GRPO on a toy task whose better policy is known: the machinery moves the model toward it."""

from __future__ import annotations

import torch

from hibiki.checkpoint import load_checkpoint
from hibiki.sampling import Sampling
from training.grpo.loss import PolicyLossConfig, policy_loss
from training.grpo.rewards import group_advantages
from training.grpo.rollout import policy_logprobs, sample_rollouts

FRAMES = 6


def test_clipping_stops_the_ratio_moving_further():
    lp = torch.tensor([[[0.0, 0.0]]], requires_grad=True)
    old = torch.log(torch.tensor([[[0.5, 0.9]]]))  # ratios 2.0 (clipped) and 1.11 (not)
    loss, metrics = policy_loss(lp, old, torch.tensor([[1.0, 1.0]]), torch.ones(1, 1, 2, dtype=torch.bool), PolicyLossConfig())
    loss.backward()
    assert lp.grad[0, 0, 0] == 0 and lp.grad[0, 0, 1] < 0  # no push beyond 1 + epsilon
    assert metrics["clip_fraction"] == 0.5


def test_grpo_moves_toward_the_rewarded_policy(tiny_dir):
    torch.manual_seed(0)
    checkpoint = load_checkpoint(tiny_dir)
    lm = checkpoint.lm
    hot = Sampling(temp=1.0, top_k=0, temp_text=1.0, top_k_text=0)
    source = torch.randint(0, 2048, (lm.n_q - lm.dep_q, FRAMES))
    optimizer = torch.optim.Adam(lm.parameters(), lr=3e-3)
    config = PolicyLossConfig()

    def text_tokens(samples: int = 16) -> torch.Tensor:
        lm.eval()
        return sample_rollouts(checkpoint, [source] * samples, hot).codes[:, 0]

    # The rewarded token: one the random model says now and then, not its favourite.
    counts = torch.bincount(text_tokens(32).flatten())
    target = int(counts.argsort(descending=True)[1])
    before = (text_tokens() == target).float().mean().item()
    assert before < 0.3
    for _ in range(30):
        lm.eval()
        group = sample_rollouts(checkpoint, [source] * 8, hot)
        # Reward at every frame's checkpoint: saying the target token there.
        rewards = (group.codes[:, 0] == target).double()
        advantages = group_advantages(rewards, list(range(FRAMES)), FRAMES).float()
        codes, old = group.codes, group.logprobs
        lm.train()
        for _ in range(2):  # the old policy is refreshed every 2 updates
            logprobs, mask = policy_logprobs(lm, lm, codes)
            loss, _ = policy_loss(logprobs, old, advantages, mask, config)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    after = (text_tokens() == target).float().mean().item()
    assert after > before + 0.3, (before, after)
