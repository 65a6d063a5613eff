"""GRPO rewards and advantages on hand cases."""

from __future__ import annotations

import pytest
import torch

from hibiki.words import Word
from training.grpo.rewards import checkpoints, group_advantages, rollout_rewards

SOURCE = [Word(w, 0.5 * i, 0.5 * i + 0.4) for i, w in enumerate("le chat noir mange une pomme rouge".split())]
REFERENCE = "the black cat eats a red apple"


def timed(text: str, start: float, step: float = 0.3) -> list[Word]:
    return [Word(w, start + step * i, start + step * i + 0.25) for i, w in enumerate(text.split())]


def marks():
    return checkpoints(SOURCE, [(0.0, REFERENCE)], every=2, source_end=3.5)


def test_checkpoints_every_nth_source_word_and_at_the_end():
    m = marks()
    assert [round(c.time, 2) for c in m] == [0.9, 1.9, 2.9, 3.5]
    assert all(c.reference == REFERENCE for c in m)
    two = checkpoints(SOURCE, [(0.0, "the black cat"), (2.0, "eats a red apple")], every=3, source_end=3.5)
    assert [c.reference for c in two] == ["the black cat", "the black cat eats a red apple", "the black cat eats a red apple"]


def test_an_early_correct_translation_scores_more_than_the_same_late():
    early = rollout_rewards(timed(REFERENCE, 0.5), marks(), REFERENCE)
    late = rollout_rewards(timed(REFERENCE, 2.5), marks(), REFERENCE)
    assert early.sum() > late.sum()
    assert early[-1] == pytest.approx(100.0)  # all said by the end of the source, all correct
    # Same final text (same final-BLEU half of every reward), but unfinished at each checkpoint.
    assert (early >= late).all() and late[-1] < early[-1]
    assert late.min() == pytest.approx(0.5 * 100.0)  # nothing emitted yet: only the final-BLEU half


def test_a_wrong_word_scores_less():
    right = rollout_rewards(timed(REFERENCE, 0.5), marks(), REFERENCE)
    wrong = rollout_rewards(timed("the black dog eats a red apple", 0.5), marks(), REFERENCE)
    assert wrong.sum() < right.sum() and wrong[-1] < right[-1]


def test_group_advantages_normalise_per_checkpoint_and_sum_the_rewards_to_go():
    rewards = torch.tensor([[10.0, 50.0], [30.0, 50.0], [20.0, 80.0]])  # 3 rollouts, 2 checkpoints
    adv = group_advantages(rewards, checkpoint_frames=[1, 3], n_frames=5)
    # Checkpoint 0: mean 20, std 10 -> -1, 1, 0. Checkpoint 1: mean 60, std 17.32 -> -0.577, -0.577, 1.155.
    first = torch.tensor([-1.0, 1.0, 0.0])
    second = torch.tensor([-0.57735, -0.57735, 1.1547])
    assert adv[:, 0] == pytest.approx(first + second, abs=1e-3)  # steps up to frame 1 see both checkpoints
    assert adv[:, 2] == pytest.approx(second, abs=1e-3)  # after the first checkpoint only the later one
    assert adv[:, 4].abs().max() == 0  # after the last checkpoint nothing is left to earn
    same = group_advantages(torch.full((4, 1), 42.0), [2], 3)
    assert torch.equal(same, torch.zeros(4, 3))  # no signal, no NaN
