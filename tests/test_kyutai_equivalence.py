"""Kyutai's published configs (reduced), streamed by the batched engine, against Kyutai's own code.

Original Hibiki (1B, 2B; CFG 1 and 3) against moshi's `run_inference.InferenceState`;
Hibiki-Zero against the `hibiki-zero` package's inference functions, driven the way its
`run.generate` drives them (that command asserts CUDA, so its loop is restated here, its
functions called as they are). Greedy, frame for frame, the watched stream joining a batch
that other streams enter before and after it. Each checkpoint is tuned to write text EOS
once the input-EOS frame has gone in, as a trained model does, so that Kyutai's loops end.

HIBIKI_TEST_DEVICE=cuda runs both sides on a GPU (moshi's CUDA graphs): bench/gpu_check.py.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch
from conftest import frames
from moshi.run_inference import InferenceState

from hibiki.audio import FRAME_SIZE, SAMPLE_RATE
from hibiki.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from hibiki.engine import BatchedTranslator
from hibiki.sampling import Sampling

hibiki_zero = pytest.importorskip("hibiki_zero.inference", reason="the hibiki-zero package (a test dependency)")
from hibiki_zero.client_utils import stack_and_pad_audio  # noqa: E402

DEVICE = os.environ.get("HIBIKI_TEST_DEVICE", "cpu")
# 11 frames and a half: the partial last frame is where the two conventions differ.
WATCHED_SAMPLES = 11 * FRAME_SIZE + 700


def ends_after_input(directory, out) -> Checkpoint:
    """The checkpoint with a direction that the input-EOS code of the semantic source codebook
    writes into the residual stream and that the text head reads as text EOS: EOS comes once the
    input has ended, not before. That code is also the initial token of the first step, whose
    text initial token cancels it."""
    base = load_checkpoint(directory)
    lm = base.lm
    generator = torch.Generator().manual_seed(5)
    direction = torch.randn(lm.dim, generator=generator)
    direction /= direction.norm()
    with torch.no_grad():
        lm.emb[lm.dep_q].weight[lm.card] = 50.0 * direction
        lm.text_emb.weight[lm.text_card] -= 50.0 * direction
        lm.text_linear.weight[base.tokenizer.eos_id()] = 2.0 * direction
    save_checkpoint(out, lm, base.mimi, base.info.tokenizer, base.lm_config,
                    mimi_config=base.info.mimi_config, metadata=base.metadata)
    return load_checkpoint(out)


@pytest.fixture(scope="module")
def ending_dirs(kyutai_dirs, tmp_path_factory):
    root = tmp_path_factory.mktemp("ending")
    presets = ("hibiki-1b", "hibiki-2b", "hibiki-zero-3b", "hibiki-zero-3b-null-fuser")
    for preset in presets:
        ends_after_input(kyutai_dirs[preset], root / preset)
    return {preset: root / preset for preset in presets}


def engine_stream(directory, cfg_coef: float, watched: np.ndarray):
    """The watched stream's outputs, streamed beside two others that join before and after it."""
    translator = BatchedTranslator(load_checkpoint(directory, device=DEVICE), slots=3,
                                   sampling=Sampling(greedy=True, cfg_coef=cfg_coef), max_tail_s=4.0)
    others = {translator.attach(): frames(30, seed=2)}
    outputs, slot, fed = [], None, 0
    for tick in range(300):
        if tick == 2:
            slot = translator.attach()
        if tick == 5:
            others[translator.attach()] = frames(9, seed=3)
        for other, pcm in list(others.items()):
            if other in translator.active_slots and tick % 3 != 0 and len(pcm):
                translator.feed(other, pcm[: 2 * FRAME_SIZE])
                others[other] = pcm[2 * FRAME_SIZE:]
                if not len(others[other]):
                    translator.end_input(other)
        if slot is not None and fed < len(watched) and tick % 2 == 0:  # uneven pieces, every other tick
            translator.feed(slot, watched[fed:fed + 1500])
            fed += 1500
            if fed >= len(watched):
                translator.end_input(slot)
        outputs += [o for o in translator.step() if o.slot == slot]
        if outputs and outputs[-1].final:
            return outputs, translator
    raise AssertionError("the watched stream never ended")


def slot_free(translator: BatchedTranslator, slot: int) -> bool:
    return slot not in translator.active_slots


def text_of(outputs) -> np.ndarray:
    return np.array([o.text_token for o in outputs])


@pytest.mark.parametrize("preset,cfg_coef", [("hibiki-1b", 1.0), ("hibiki-1b", 3.0), ("hibiki-2b", 1.0),
                                             ("hibiki-2b", 3.0)])
@torch.no_grad()
def test_original_hibiki_matches_moshi_run_inference(ending_dirs, preset, cfg_coef):
    directory = ending_dirs[preset]
    watched = frames(12, seed=4)[:WATCHED_SAMPLES]
    reference = load_checkpoint(directory, device=DEVICE)
    assert reference.convention.name == "moshi"
    state = InferenceState(reference.info, reference.mimi, reference.tokenizer, reference.lm, batch_size=1,
                           cfg_coef=cfg_coef, device=DEVICE, use_sampling=False)
    (ref_text, ref_pcm), = state.run(torch.from_numpy(watched)[None, None].to(DEVICE))
    outputs, translator = engine_stream(directory, cfg_coef, watched)

    ref_text, ref_pcm = ref_text.cpu().numpy(), ref_pcm.cpu()
    assert ref_text[-1] == translator.eos_text_id and (ref_text != translator.eos_text_id).sum() > 5
    np.testing.assert_array_equal(text_of(outputs), ref_text)
    np.testing.assert_allclose(np.concatenate([o.pcm for o in outputs]), ref_pcm[0].numpy(), atol=1e-4)
    assert outputs[-1].final and slot_free(translator, outputs[-1].slot)


@torch.no_grad()
def hibiki_zero_generate(checkpoint: Checkpoint, watched: np.ndarray):
    """hibiki-zero's `run.generate` on one file, greedy: (text tokens, audio codes, its decoded outputs)."""
    info = copy.copy(checkpoint.info)
    info.lm_gen_config = dict(use_sampling=False)
    mimi, lm_gen = checkpoint.mimi, hibiki_zero.get_lmgen(checkpoint.lm, info, batch_size=1)
    wav = torch.from_numpy(watched)[None].to(DEVICE)
    duration = wav.shape[-1] / mimi.sample_rate
    batch_wavs = stack_and_pad_audio([wav], max_len=wav.shape[-1] + 4 * SAMPLE_RATE)
    codes, warmup_codes = hibiki_zero.encode_inputs(batch_wavs, mimi, lm_gen, [duration])
    text, audio = [], []
    with lm_gen.streaming(1):
        for step in range(warmup_codes.shape[-1]):
            lm_gen.step(warmup_codes[:, :, step:step + 1])
        for step in range(codes.shape[-1]):
            tokens = lm_gen.step(codes[:, :, step:step + 1])
            text.append(tokens[:, 0, :])
            audio.append(tokens[:, 1:, :])
    text_tokens, audio_codes = torch.concat(text, dim=-1), torch.concat(audio, dim=-1)
    decoded = hibiki_zero.decode_outputs(audio_codes, text_tokens, mimi, checkpoint.tokenizer)
    ref_wav, ref_string = decoded[0]
    return text_tokens[0].cpu().numpy(), audio_codes[0].cpu().numpy(), (ref_wav.cpu(), ref_string)


@pytest.mark.parametrize("preset", ["hibiki-zero-3b", "hibiki-zero-3b-null-fuser"])
def test_hibiki_zero_matches_the_hibiki_zero_package(ending_dirs, preset):
    directory = ending_dirs[preset]
    watched = frames(12, seed=4)[:WATCHED_SAMPLES]
    reference = load_checkpoint(directory, device=DEVICE)
    assert reference.convention.name == "hibiki-zero" and not reference.voice_conditioner
    ref_text, ref_audio, (ref_wav, ref_string) = hibiki_zero_generate(reference, watched)
    outputs, translator = engine_stream(directory, 1.0, watched)

    eos = len(outputs) - 1
    assert outputs[-1].text_token == translator.eos_text_id and ref_text[eos] == translator.eos_text_id
    assert (ref_text[:eos] != translator.eos_text_id).all() and (ref_text[:eos] > 3).sum() > 5
    np.testing.assert_array_equal(text_of(outputs), ref_text[:eos + 1])
    np.testing.assert_array_equal(np.stack([o.audio_tokens for o in outputs]), ref_audio[:, :eos + 1].T)
    assert translator.decode_text([o.text_token for o in outputs]) == ref_string
    np.testing.assert_allclose(np.concatenate([o.pcm for o in outputs[:eos]]), ref_wav[0].numpy(), atol=1e-4)
