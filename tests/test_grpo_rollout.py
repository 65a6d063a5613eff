"""Rollout log-probs (seen while sampling) equal the training-side log-probs of the same tokens."""

from __future__ import annotations

import torch
from conftest import frames

from hibiki.checkpoint import load_checkpoint
from training.grpo.rollout import policy_logprobs, sample_rollouts


def test_recomputed_logprobs_equal_those_seen_when_sampling(tiny_dir):
    checkpoint = load_checkpoint(tiny_dir)
    lm, mimi = checkpoint.lm, checkpoint.mimi
    with torch.no_grad(), mimi.streaming(1):
        source = mimi.encode(torch.from_numpy(frames(14, seed=5))[None, None])[0, :lm.n_q - lm.dep_q]
    source = torch.cat([source, torch.full((source.shape[0], 1), mimi.cardinality), source[:, :4]], dim=1)  # EOS, then more
    torch.manual_seed(0)
    rollout = sample_rollouts(lm, [source] * 3, temp=1.0, top_k=0, temp_text=1.0, top_k_text=0)
    generated = ~torch.isnan(rollout.logprobs)
    assert generated.sum() > 0.8 * generated.numel()
    with torch.no_grad():
        recomputed, valid = policy_logprobs(lm, lm, rollout.codes)
    assert (valid == generated).all()
    torch.testing.assert_close(recomputed[generated], rollout.logprobs[generated], atol=1e-4, rtol=1e-4)
    assert rollout.logprobs[generated].std() > 0.1  # real sampled tokens, not all the argmax
    assert not torch.equal(rollout.codes[0], rollout.codes[1])  # the group's rollouts are sampled independently


def test_a_batch_of_sources_of_any_length_equals_each_alone(tiny_dir):
    lm = load_checkpoint(tiny_dir).lm
    generator = torch.Generator().manual_seed(3)
    sources = [torch.randint(0, 2048, (lm.n_q - lm.dep_q, frames), generator=generator) for frames in (12, 7, 12, 3)]
    batch = sample_rollouts(lm, sources, greedy=True)
    assert batch.codes.shape[-1] == 12
    for b, source in enumerate(sources):
        alone = sample_rollouts(lm, [source], greedy=True)
        frames = source.shape[1]
        torch.testing.assert_close(batch.codes[b, :, :frames], alone.codes[0])
        torch.testing.assert_close(batch.logprobs[b, :, :frames], alone.logprobs[0], equal_nan=True, atol=1e-4, rtol=1e-4)
        assert (batch.codes[b, :, frames:] == -1).all() and batch.logprobs[b, :, frames:].isnan().all()
