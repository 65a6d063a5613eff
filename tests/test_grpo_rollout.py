"""Rollouts: their log-probs (seen while sampling) equal the training-side log-probs of the same
tokens, and greedy rollouts of a prepared source are the engine's greedy translation of its audio."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import frames, stream_through

from hibiki.audio import FRAME_PERIOD_S, FRAME_SIZE
from hibiki.checkpoint import load_checkpoint
from hibiki.engine import BatchedTranslator
from hibiki.sampling import Sampling
from training.examples import source_stream
from training.grpo.rollout import policy_logprobs, sample_rollouts

GREEDY = Sampling(greedy=True)
HOT = Sampling(temp=1.0, top_k=0, temp_text=1.0, top_k_text=0)


def test_recomputed_logprobs_equal_those_seen_when_sampling(tiny_dir):
    checkpoint = load_checkpoint(tiny_dir)
    lm, mimi = checkpoint.lm, checkpoint.mimi
    assert checkpoint.convention.name == "moshi-padded"
    with torch.no_grad(), mimi.streaming(1):
        source = mimi.encode(torch.from_numpy(frames(14, seed=5))[None, None])[0, :lm.n_q - lm.dep_q]
    source = torch.cat([source, torch.full((source.shape[0], 1), mimi.cardinality), source[:, :4]], dim=1)  # EOS, then more
    torch.manual_seed(0)
    rollout = sample_rollouts(checkpoint, [source] * 3, HOT)
    generated = ~torch.isnan(rollout.logprobs)
    assert generated.sum() > 0.8 * generated.numel()
    with torch.no_grad():
        recomputed, valid = policy_logprobs(lm, lm, rollout.codes)
    assert (valid == generated).all()
    torch.testing.assert_close(recomputed[generated], rollout.logprobs[generated], atol=1e-4, rtol=1e-4)
    assert rollout.logprobs[generated].std() > 0.1  # real sampled tokens, not all the argmax
    assert not torch.equal(rollout.codes[0], rollout.codes[1])  # the group's rollouts are sampled independently


def test_a_batch_of_sources_of_any_length_equals_each_alone(tiny_dir):
    checkpoint = load_checkpoint(tiny_dir)
    lm = checkpoint.lm
    generator = torch.Generator().manual_seed(3)
    sources = [torch.randint(0, 2048, (lm.n_q - lm.dep_q, frames), generator=generator) for frames in (12, 7, 12, 3)]
    batch = sample_rollouts(checkpoint, sources, GREEDY)
    assert batch.codes.shape[-1] == 12
    for b, source in enumerate(sources):
        alone = sample_rollouts(checkpoint, [source], GREEDY)
        frames = source.shape[1]
        torch.testing.assert_close(batch.codes[b, :, :frames], alone.codes[0])
        torch.testing.assert_close(batch.logprobs[b, :, :frames], alone.logprobs[0], equal_nan=True, atol=1e-4, rtol=1e-4)
        assert (batch.codes[b, :, frames:] == -1).all() and batch.logprobs[b, :, frames:].isnan().all()


@pytest.mark.parametrize("preset", ["tiny", "hibiki-zero-3b"])
def test_greedy_rollouts_are_the_engines_greedy_output(preset, tiny_dir, kyutai_dirs):
    """Frame for frame, text and audio tokens: the source prepared as training prepares it
    (training.examples) against the engine fed the same audio. Zero primes with encoded silence."""
    checkpoint = load_checkpoint(tiny_dir if preset == "tiny" else kyutai_dirs[preset])
    lm = checkpoint.lm
    source_frames, silence_frames = 10, 14
    pcm = frames(source_frames, seed=21)
    pcm = pcm[:-FRAME_SIZE // 3]  # a partial last frame, which conventions pad or drop
    source = torch.from_numpy(source_stream(checkpoint.mimi, pcm, source_frames + silence_frames, checkpoint.convention)).long()
    rollout = sample_rollouts(checkpoint, [source[:lm.n_q - lm.dep_q]] * 2, GREEDY)

    with BatchedTranslator(checkpoint, slots=2, sampling=GREEDY, max_tail_s=silence_frames * FRAME_PERIOD_S) as translator:
        translator.feed(translator.attach(), frames(30, seed=4))  # a neighbour, so slots and masks matter
        outputs = stream_through(translator, pcm)
    engine = np.stack([np.concatenate([[o.text_token], o.audio_tokens]) for o in outputs], axis=1)  # [1 + dep_q, N]
    engine = engine[:, translator.stream_lm.priming.shape[-1] - 1:]  # outputs of the priming steps come first
    generated = rollout.codes[0, :1 + lm.dep_q].numpy()
    frames_compared = min(engine.shape[1], generated.shape[1])
    assert frames_compared >= source_frames + 4
    mask = generated[:, :frames_compared] >= 0
    assert mask[0].all() and mask.mean() > 0.5
    np.testing.assert_array_equal(engine[:, :frames_compared][mask], generated[:, :frames_compared][mask])
    torch.testing.assert_close(rollout.codes[0], rollout.codes[1])
    assert not lm.is_streaming  # both gave the LM back: it can train
