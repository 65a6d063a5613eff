"""The batched streaming translator against moshi's own single-stream recipe."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import frames, stream_through
from moshi.models import LMGen

from hibiki.audio import FRAME_SIZE
from hibiki.checkpoint import load_checkpoint
from hibiki.engine import BatchedTranslator, NoFreeSlot
from hibiki.sampling import Sampling
from hibiki.slot_sampling import SlotSampling

GREEDY = Sampling(greedy=True)


@torch.no_grad()
def moshi_reference(checkpoint, pcm: np.ndarray, silence_frames: int) -> list[np.ndarray]:
    """One stream the way moshi.run_inference does it: first frame fed twice, input EOS
    (cardinality on every codebook), then encoded silence. Returns [text, audio...] per step."""
    lm_gen = LMGen(checkpoint.lm, use_sampling=False)
    mimi = checkpoint.mimi
    lm_gen.streaming_forever(1)
    mimi.streaming_forever(1)
    chunks = [torch.from_numpy(c)[None, None] for c in pcm.reshape(-1, FRAME_SIZE)]
    eos = torch.full((1, mimi.num_codebooks, 1), mimi.cardinality, dtype=torch.long)
    silence = [torch.zeros(1, 1, FRAME_SIZE)] * silence_frames
    outputs = []
    for i, item in enumerate(chunks + [None] + silence):
        codes = eos if item is None else mimi.encode(item)
        if i == 0:
            lm_gen.step(codes)
        tokens = lm_gen.step(codes)
        if tokens is not None:
            outputs.append(tokens[0, :, 0].numpy())
    return outputs


def tokens_of(outputs) -> list[np.ndarray]:
    return [np.concatenate([[o.text_token], o.audio_tokens]) for o in outputs]


# Pipelined (encoder on its own thread, a tick ahead of the LM): the same frames, a tick later.
PIPELINE = pytest.mark.parametrize("pipeline", [False, True], ids=["sequential", "pipelined"])


@PIPELINE
def test_single_stream_matches_moshi(tiny_dir, pipeline):
    pcm = frames(12, seed=0)
    reference = moshi_reference(load_checkpoint(tiny_dir), pcm, silence_frames=6)
    translator = BatchedTranslator(load_checkpoint(tiny_dir), slots=2, sampling=GREEDY,
                                   max_tail_s=len(reference) * 0.08, pipeline=pipeline)
    slot = translator.attach()
    translator.feed(slot, pcm)
    translator.end_input(slot)
    outputs = []
    while len(outputs) < len(reference):
        outputs += translator.step()
    np.testing.assert_array_equal(np.stack(tokens_of(outputs)), np.stack(reference))
    assert [o.index for o in outputs] == list(range(len(outputs)))


@PIPELINE
def test_slots_are_independent(tiny_dir, pipeline):
    """A stream's tokens are the same alone or beside streams that join, stall and leave."""
    watched = frames(16, seed=1)
    reference = moshi_reference(load_checkpoint(tiny_dir), watched, silence_frames=4)
    translator = BatchedTranslator(load_checkpoint(tiny_dir), slots=3, sampling=GREEDY,
                                   max_tail_s=(len(reference) - 16) * 0.08, pipeline=pipeline)
    others = {translator.attach(): frames(30, seed=2)}  # joins first, feeds one frame per tick
    outputs, watched_slot, fed, tick = [], None, 0, 0
    while tick < 200:
        if tick == 2:
            watched_slot = translator.attach()
        if tick == 5:
            others[translator.attach()] = frames(9, seed=3)  # fills the batch
            with pytest.raises(NoFreeSlot):
                translator.attach()
        for slot, pcm in list(others.items()):
            if slot in translator.active_slots and tick % 3 != 0 and len(pcm):
                translator.feed(slot, pcm[: 2 * FRAME_SIZE])  # bursts of two frames, stalls every third tick
                others[slot] = pcm[2 * FRAME_SIZE:]
                if not len(others[slot]):
                    translator.end_input(slot)
        if watched_slot is not None and fed < 16 and tick % 2 == 0:  # our stream: every other tick
            translator.feed(watched_slot, watched[fed * FRAME_SIZE:(fed + 1) * FRAME_SIZE])
            fed += 1
            if fed == 16:
                translator.end_input(watched_slot)
        step = translator.step()
        outputs += [o for o in step if o.slot == watched_slot]
        if outputs and outputs[-1].final:
            break
        tick += 1
    assert len(outputs) == len(reference)
    np.testing.assert_array_equal(np.stack(tokens_of(outputs)), np.stack(reference))


def test_each_stream_samples_its_own_way(tiny_dir):
    """In one batch: a greedy stream matches moshi's greedy recipe while its neighbour samples hot."""
    pcm = frames(12, seed=0)
    reference = moshi_reference(load_checkpoint(tiny_dir), pcm, silence_frames=6)
    hot = Sampling(temp=2.0, temp_text=2.0, top_k=0, top_k_text=0)
    translator = BatchedTranslator(load_checkpoint(tiny_dir), slots=3, sampling=hot,
                                   max_tail_s=(len(reference) - 12) * 0.08)
    torch.manual_seed(0)
    streams = {translator.attach(): "hot", translator.attach(sampling=GREEDY): "greedy",
               translator.attach(sampling=Sampling(temp=0.7, top_k=1, temp_text=0.7, top_k_text=1)): "top-1"}
    for slot in streams:
        translator.feed(slot, pcm)
        translator.end_input(slot)
    outputs = {name: [] for name in streams.values()}
    while translator.active_slots:
        for output in translator.step():
            outputs[streams[output.slot]].append(output)
    np.testing.assert_array_equal(np.stack(tokens_of(outputs["greedy"])), np.stack(reference))
    np.testing.assert_array_equal(np.stack(tokens_of(outputs["top-1"])), np.stack(reference))
    assert len(outputs["hot"]) == len(reference)
    assert (np.stack(tokens_of(outputs["hot"])) != np.stack(reference)).mean() > 0.5
    translator.detach(translator.attach(sampling=GREEDY))
    assert translator.stream_lm.slot_sampling.temp_text[translator.attach()] == 2.0  # a reused slot has the batch's settings
    with pytest.raises(ValueError, match="cfg_coef is the batch's setting"):
        translator.attach(sampling=Sampling(cfg_coef=3.0))
    with pytest.raises(ValueError, match=">= 0"):
        translator.attach(sampling=Sampling(temp=-1.0))


@torch.no_grad()
def test_shaped_logits_argmax_draws_from_each_slots_distribution(tiny_dir):
    """The argmax LMGen takes of the shaped logits is a draw from softmax(top-k(logits / temp))."""
    lm = load_checkpoint(tiny_dir).lm
    sampling = SlotSampling(lm, slots=2, default=Sampling(temp=1.0, top_k=0, temp_text=0.5, top_k_text=3))
    sampling.set(1, Sampling(temp=1.0, top_k=0, temp_text=1.0, top_k_text=0, greedy=True))
    torch.manual_seed(0)
    logits = (torch.randn(lm.text_card) * 0.5).expand(2, 1, 1, -1).contiguous()
    draws = []
    for _ in range(4000):
        shaped = logits.clone()
        sampling.shape_text(shaped)
        draws.append(shaped.argmax(-1).view(2))
    draws = torch.stack(draws)
    best3 = (logits[0, 0, 0] / 0.5).topk(3)
    observed = torch.stack([(draws[:, 0] == i).float().mean() for i in best3.indices])
    assert observed.sum() == 1.0  # nothing outside the slot's top 3
    torch.testing.assert_close(observed, best3.values.softmax(-1), atol=0.03, rtol=0)
    assert (draws[:, 1] == logits[1].argmax()).all()  # the greedy slot


@PIPELINE
def test_text_eos_after_input_eos_ends_stream_and_frees_slot(eos_dir, pipeline):
    """This checkpoint writes text EOS at every step: ignored while input flows, final after."""
    translator = BatchedTranslator(load_checkpoint(eos_dir), slots=2, sampling=GREEDY, max_tail_s=5.0,
                                   pipeline=pipeline)
    slot = translator.attach()
    translator.feed(slot, frames(10, seed=4))
    outputs = []
    for _ in range(30):  # input not ended: the stream must keep going however often EOS is written
        outputs += translator.step()
    assert len(outputs) == 10 - translator.max_delay + 1 and not any(o.final for o in outputs)
    assert all(o.text_token == translator.eos_text_id and o.text == "" for o in outputs)
    translator.end_input(slot)
    for _ in range(30):
        outputs += translator.step()
    assert len(outputs) == 10, "ends at the first output frame after the input EOS frame went in"
    assert outputs[-1].final and not any(o.final for o in outputs[:-1])
    assert translator.free_slots == 2 and translator.active_slots == []
    assert translator.step() == []


def test_tail_is_bounded_when_the_model_never_ends(tiny_dir):
    translator = BatchedTranslator(load_checkpoint(tiny_dir), slots=1, sampling=GREEDY, max_tail_s=0.4)
    slot = translator.attach()
    translator.feed(slot, frames(7, seed=5)[: 6 * FRAME_SIZE + 100])  # 6 frames and a partial one
    translator.end_input(slot)
    outputs = []
    for _ in range(40):
        outputs += translator.step()
    assert len(outputs) == 7 + 5  # partial frame padded (this project's convention), then 5 tail frames (0.4 s)
    assert outputs[-1].final and translator.free_slots == 1
    assert all(o.pcm.shape == (FRAME_SIZE,) and o.pcm.dtype == np.float32 for o in outputs)


@PIPELINE
def test_output_lag_when_fed_in_real_time(tiny_dir, pipeline):
    """Live clients send one frame per tick: output i must come out as input i + lag is consumed."""
    translator = BatchedTranslator(load_checkpoint(tiny_dir), slots=1, sampling=GREEDY, pipeline=pipeline)
    slot = translator.attach()
    translator.step()  # the priming step happens at the first tick after attach, before any input
    produced_at = {}
    for k, frame in enumerate(frames(8, seed=6).reshape(-1, FRAME_SIZE)):
        translator.feed(slot, frame)
        for output in translator.step():
            produced_at[output.index] = k
    assert translator.output_lag_frames == translator.max_delay - 1 + 2 * pipeline == 1 + 2 * pipeline
    assert produced_at == {i: i + translator.output_lag_frames for i in range(8 - translator.output_lag_frames)}


def test_misuse_is_reported(tiny_dir):
    translator = BatchedTranslator(load_checkpoint(tiny_dir), slots=1)
    with pytest.raises(ValueError, match="slot 0 has no stream attached"):
        translator.feed(0, np.zeros(10, dtype=np.float32))
    slot = translator.attach()
    translator.end_input(slot)
    with pytest.raises(ValueError, match="input already ended"):
        translator.feed(slot, np.zeros(10, dtype=np.float32))
    translator.detach(slot)
    assert translator.free_slots == 1
    with pytest.raises(ValueError, match="voice-transfer conditioner"):
        BatchedTranslator(load_checkpoint(tiny_dir), sampling=Sampling(cfg_coef=3.0))
    with pytest.raises(ValueError, match="unknown sampling settings"):
        load_checkpoint(tiny_dir).sampling(temperature=0.5)


def run_alone_and_beside_another(directory, sampling: Sampling, pcm: np.ndarray) -> tuple[list, list]:
    """The same stream in a batch of two: alone, then beside a neighbour that starts first."""
    runs = []
    for neighbour in (False, True):
        translator = BatchedTranslator(load_checkpoint(directory), slots=2, sampling=sampling, max_tail_s=0.4)
        if neighbour:
            other = translator.attach()
            translator.feed(other, frames(40, seed=9))
            translator.step()
        runs.append(tokens_of(stream_through(translator, pcm)))
    return runs


def test_voice_transfer_guidance(tmp_path):
    """cfg_coef != 1 on a checkpoint with Hibiki's voice conditioner: guided, still per-slot independent."""
    from hibiki.random_checkpoint import build_random_checkpoint

    directory = build_random_checkpoint(tmp_path / "vt", "tiny", seed=3, voice_conditioner=True)
    assert load_checkpoint(directory).lm.condition_provider is not None
    pcm = frames(8, seed=8)
    plain = run_alone_and_beside_another(directory, Sampling(greedy=True, cfg_coef=1.0), pcm)
    guided = run_alone_and_beside_another(directory, Sampling(greedy=True, cfg_coef=3.0), pcm)
    for alone, beside in (plain, guided):
        np.testing.assert_array_equal(np.stack(alone), np.stack(beside))
    assert not np.array_equal(np.stack(plain[0]), np.stack(guided[0])), "guidance changed nothing"


def test_translators_on_one_checkpoint_take_turns(tiny_dir):
    """A second translator on a checkpoint in use is refused plainly; once the first is closed it
    works, and gives what a translator on a fresh load gives."""
    checkpoint, pcm = load_checkpoint(tiny_dir), frames(6, seed=31)
    first = BatchedTranslator(checkpoint, sampling=GREEDY, max_tail_s=0.4)
    stream_through(first, frames(4, seed=1))
    with pytest.raises(ValueError, match="already serve another BatchedTranslator"):
        BatchedTranslator(checkpoint)
    first.close()
    assert not checkpoint.lm.is_streaming and "forward_depformer" not in vars(checkpoint.lm)
    with BatchedTranslator(checkpoint, sampling=GREEDY, max_tail_s=0.4) as second:
        again = tokens_of(stream_through(second, pcm))
    with BatchedTranslator(load_checkpoint(tiny_dir), sampling=GREEDY, max_tail_s=0.4) as fresh:
        np.testing.assert_array_equal(np.stack(again), np.stack(tokens_of(stream_through(fresh, pcm))))
