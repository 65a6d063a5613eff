"""The batched streaming translator: one LM and one Mimi serving B independent streams.

Each stream owns a slot of the batch. moshi's per-slot `reset_streaming(mask)` starts a
stream without disturbing the others, and `set_exec_mask(mask)` lets a tick advance only
the slots that have something to do, so streams join, feed at their own pace and leave
at any frame. A tick is one 80 ms model step for every slot that advances.

Stream life: attach -> priming -> one step per 80 ms input frame -> after `end_input`, one
input-EOS frame (every source code = Mimi's cardinality) then Mimi-encoded silence, until
the model writes text EOS or the tail bound is reached -> the slot is free again. Priming,
the last partial frame and the EOS frame follow the checkpoint's `StreamConvention`
(moshi's `run_inference` or the hibiki-zero package's), see `hibiki.stream_convention`.
This module handles audio and the stream's life; `hibiki.stream_lm` steps the LM, the same
way for GRPO's rollouts.

Output audio is in model time: output frame t is the target frame aligned with input
frame t (what training aligns), as moshi's run_inference writes it. A live listener hears
it `max(delays)` frames after input frame t arrived.

Pipelined (for CPUs): a tick runs three stages at once, each on its own thread: the Mimi
encoder on this tick's input frames, the LM on the frames the previous tick encoded, the
Mimi decoder on the tokens the previous tick's LM step wrote. The codec and the LM then
share the cores (torch releases the GIL in its kernels) and a tick costs its slowest stage,
not their sum. The encoder gets its own copy of Mimi, whose streaming state only that
thread touches. Outputs are the same frames, two ticks later.
"""

from __future__ import annotations

import copy
import enum
import logging
from collections import deque
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np
import torch

from hibiki.audio import FRAME_PERIOD_S, FRAME_SIZE, as_pcm
from hibiki.checkpoint import Checkpoint
from hibiki.sampling import Sampling
from hibiki.stream_convention import StreamConvention
from hibiki.stream_lm import StreamLM
from hibiki.tokens import SILENT_TEXT_IDS

logger = logging.getLogger(__name__)


class NoFreeSlot(RuntimeError):
    """Every slot of the batch is taken."""


class _Phase(enum.Enum):
    FREE = "free"
    PRIME = "prime"  # the stream's first steps: StreamLM's priming codes
    RUNNING = "running"  # one step per buffered input frame
    FLUSHING = "flushing"  # input ended: EOS frame, then silence, every tick


@dataclass
class _Slot:
    phase: _Phase = _Phase.FREE
    primed: int = 0  # priming steps taken
    chunks: deque = field(default_factory=deque)  # float32 arrays not yet consumed
    buffered: int = 0  # samples in chunks
    input_ended: bool = False
    eos_fed: bool = False
    input_frames: int = 0  # real frames consumed (partial last frame included)
    outputs: int = 0  # output frames emitted

    def pop_frame(self, pad: bool) -> np.ndarray | None:
        """The next FRAME_SIZE samples, zero-padding the last partial frame when `pad`."""
        if self.buffered < FRAME_SIZE and not (pad and self.buffered > 0):
            return None
        frame = np.zeros(FRAME_SIZE, dtype=np.float32)
        filled = 0
        while filled < FRAME_SIZE and self.chunks:
            chunk = self.chunks[0]
            take = min(FRAME_SIZE - filled, len(chunk))
            frame[filled:filled + take] = chunk[:take]
            filled += take
            if take == len(chunk):
                self.chunks.popleft()
            else:
                self.chunks[0] = chunk[take:]
        self.buffered -= filled
        return frame


@dataclass
class _Tick:
    """One model step, from the inputs gathered when its tick starts to its decoded tokens.

    Pipelined, its LM step runs a tick later and its decode two: `streams` says which
    stream each slot held, so the work of a stream that has since left is dropped, and
    `eos_fed` / `input_frames` are the streams' counts as they were when it was gathered."""

    execute: np.ndarray  # [B] bool: slots the LM steps
    encode: np.ndarray  # [B] bool: slots whose pcm Mimi encodes
    eos: np.ndarray  # [B] bool: slots fed the input-EOS frame
    priming: np.ndarray  # [B] int: the priming step a priming slot takes, else -1
    pcm: np.ndarray  # [B, 1, FRAME_SIZE]
    streams: list[_Slot]
    eos_fed: np.ndarray  # [B] bool
    input_frames: np.ndarray  # [B] int
    codes: torch.Tensor | None = None  # [B, n_q, 1] once encoded
    tokens: torch.Tensor | None = None  # [B, 1 + dep_q] once the LM stepped
    valid: torch.Tensor | None = None  # [B] bool: slots whose tokens are an output frame


@dataclass
class FrameOutput:
    """What one stream receives for one output frame."""

    slot: int
    index: int  # output frame index: covers [index * 80 ms, (index + 1) * 80 ms) of model time
    pcm: np.ndarray  # FRAME_SIZE float32 samples at 24 kHz
    text: str  # the text piece for this frame ('' for padding), SentencePiece '▁' as a space
    text_token: int
    audio_tokens: np.ndarray  # [dep_q] codes that produced `pcm`
    final: bool  # the stream is complete and its slot has been freed


class BatchedTranslator:
    """Steps B streams through one Hibiki model; not thread-safe (drive it from one loop)."""

    def __init__(self, checkpoint: Checkpoint, slots: int = 1, sampling: Sampling | None = None,
                 max_tail_s: float = 10.0, pipeline: bool = False):
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self.checkpoint = checkpoint
        self.lm = checkpoint.lm
        self.mimi = checkpoint.mimi
        self.tokenizer = checkpoint.tokenizer
        self.device = self.lm.device
        self.sampling = sampling or checkpoint.sampling()
        self.max_tail_frames = max(0, round(max_tail_s / FRAME_PERIOD_S))
        self.batch_size = slots
        self.max_delay = max(self.lm.delays)
        # Output frame i comes out of the step that consumes input frame i + output_lag_frames:
        # the acoustic delay, less the one frame the model reads ahead (moshi's alignment),
        # plus the two ticks a pipelined engine holds each frame (encoder -> LM -> decoder).
        self.output_lag_frames = self.max_delay - 1 + 2 * int(pipeline)
        self.eos_text_id = self.tokenizer.eos_id()
        self.convention: StreamConvention = checkpoint.convention
        if self.mimi.is_streaming:
            raise ValueError("this checkpoint's models already serve another BatchedTranslator; "
                             "close it (or load the checkpoint again) for a second one")
        self.stream_lm = StreamLM(checkpoint, slots, self.sampling)
        self._encoder_mimi = copy.deepcopy(self.mimi) if pipeline else self.mimi
        # One thread per stage, always the same: a torch call from a new thread starts another OpenMP team.
        self._encoder = ThreadPoolExecutor(1, thread_name_prefix="hibiki-encoder") if pipeline else None
        self._decoder = ThreadPoolExecutor(1, thread_name_prefix="hibiki-decoder") if pipeline else None
        self._encoded: _Tick | None = None  # pipelined: encoded last tick, LM step this tick
        self._stepped: _Tick | None = None  # pipelined: LM-stepped last tick, decoded this tick
        self._streaming = ExitStack()
        self._streaming.enter_context(self.mimi.streaming(slots))
        if pipeline:
            self._streaming.enter_context(self._encoder_mimi.streaming(slots))
        self._streaming.callback(self.stream_lm.close)
        self._slots = [_Slot() for _ in range(slots)]
        if self.device.type == "cuda":
            self._warmup()

    # ----------------------------------------------------------------- stream API
    @property
    def free_slots(self) -> int:
        return sum(s.phase is _Phase.FREE for s in self._slots)

    @property
    def active_slots(self) -> list[int]:
        return [i for i, s in enumerate(self._slots) if s.phase is not _Phase.FREE]

    def buffered_frames(self, slot: int) -> int:
        """Whole input frames queued for a stream and not yet consumed."""
        return self._slots[slot].buffered // FRAME_SIZE

    def attach(self, sampling: Sampling | None = None) -> int:
        """Takes a free slot for a new stream and resets its state; raises NoFreeSlot.

        `sampling` gives this stream its own temperatures and top-k (not cfg_coef, which is
        the batch's); without it the stream samples with the translator's settings."""
        if sampling is not None:
            self.check_stream_sampling(sampling)
        for index, slot in enumerate(self._slots):
            if slot.phase is _Phase.FREE:
                self._reset([index], sampling)
                self._slots[index] = _Slot(phase=_Phase.PRIME)
                logger.debug("slot %d attached", index)
                return index
        raise NoFreeSlot(f"all {self.batch_size} slots are busy")

    def check_stream_sampling(self, sampling: Sampling) -> None:
        """Raises ValueError if a stream cannot have these settings in this batch."""
        self.stream_lm.check_stream_sampling(sampling)

    def feed(self, slot: int, pcm: np.ndarray) -> None:
        """Queues 24 kHz mono float32 samples of any length for a stream."""
        state = self._active(slot)
        if state.input_ended:
            raise ValueError(f"slot {slot}: input already ended")
        pcm = as_pcm(pcm)
        if pcm.size:
            state.chunks.append(pcm)
            state.buffered += pcm.size

    def end_input(self, slot: int) -> None:
        """Marks the end of a stream's input; its translation is then flushed."""
        self._active(slot).input_ended = True

    def detach(self, slot: int) -> None:
        """Abandons a stream (e.g. its client left); the slot is free at once."""
        self._slots[slot] = _Slot()

    # ----------------------------------------------------------------- stepping
    @torch.no_grad()
    def step(self) -> list[FrameOutput]:
        """Advances every slot that has work by one model step; returns the frames produced
        (pipelined: those of the step gathered two calls before)."""
        tick = self._gather()
        if self._encoder is None:
            if tick is None:
                return []
            tick.codes = self._encode(tick)
            if not self._step_lm(tick):
                return []
            return self._collect(tick, self._decode(tick))
        assert self._decoder is not None
        encoded, stepped = self._still_attached(self._encoded), self._still_attached(self._stepped)
        self._encoded = self._stepped = None
        encoding = self._encoder.submit(self._encode, tick) if tick is not None else None
        decoding = self._decoder.submit(self._decode, stepped) if stepped is not None else None
        try:
            if encoded is not None and self._step_lm(encoded):
                self._stepped = encoded
        finally:  # no stage may still run when this call returns, even on an error
            wait([f for f in (encoding, decoding) if f is not None])
        if encoding is not None:
            tick.codes = encoding.result()
            self._encoded = tick
        return self._collect(stepped, decoding.result()) if decoding is not None else []

    def _still_attached(self, tick: _Tick | None) -> _Tick | None:
        """A tick held by the pipeline, less the slots whose stream has left since; None if none is left."""
        if tick is None:
            return None
        attached = np.array([a is b for a, b in zip(tick.streams, self._slots)])
        tick.execute &= attached
        if tick.valid is not None:
            tick.valid &= torch.from_numpy(attached).to(self.device)
            return tick if bool(tick.valid.any()) else None
        return tick if tick.execute.any() else None

    def _gather(self) -> _Tick | None:
        """Takes this tick's input frame from every slot and moves the slots' phases on."""
        B = self.batch_size
        execute = np.zeros(B, dtype=bool)
        encode = np.zeros(B, dtype=bool)
        eos = np.zeros(B, dtype=bool)
        priming = np.full(B, -1)
        priming_steps = self.stream_lm.priming.shape[-1]
        pcm_in = np.zeros((B, 1, FRAME_SIZE), dtype=np.float32)
        for index, slot in enumerate(self._slots):
            if slot.phase is _Phase.PRIME:
                execute[index] = True
                priming[index] = slot.primed
                slot.primed += 1
                if slot.primed == priming_steps:
                    slot.phase = _Phase.RUNNING
            elif slot.phase is _Phase.RUNNING:
                frame = slot.pop_frame(pad=slot.input_ended and self.convention.pad_last_frame)
                if frame is not None:
                    execute[index] = encode[index] = True
                    pcm_in[index, 0] = frame
                    slot.input_frames += 1
                elif slot.input_ended:
                    slot.phase = _Phase.FLUSHING
            if slot.phase is _Phase.FLUSHING:
                execute[index] = True
                if slot.eos_fed:
                    encode[index] = True  # silence after the EOS frame
                else:
                    eos[index] = slot.eos_fed = True
                    encode[index] = self.convention.encode_eos_frame
        if not execute.any():
            return None
        return _Tick(execute=execute, encode=encode, eos=eos, priming=priming, pcm=pcm_in, streams=list(self._slots),
                     eos_fed=np.array([s.eos_fed for s in self._slots]),
                     input_frames=np.array([s.input_frames for s in self._slots]))

    @torch.no_grad()  # also on the encoder thread: grad mode is per thread
    def _encode(self, tick: _Tick) -> torch.Tensor:
        mimi = self._encoder_mimi
        if tick.encode.any():
            mimi.set_exec_mask(torch.from_numpy(tick.encode).to(self.device))
            codes = mimi.encode(torch.from_numpy(tick.pcm).to(self.device))
        else:
            codes = torch.zeros(self.batch_size, mimi.num_codebooks, 1, dtype=torch.long, device=self.device)
        if tick.eos.any():
            codes[torch.from_numpy(tick.eos).to(self.device)] = self.stream_lm.eos_code
        for index in np.flatnonzero(tick.priming >= 0):
            codes[index, :, 0] = self.stream_lm.priming[:, tick.priming[index]]
        return codes

    def _step_lm(self, tick: _Tick) -> bool:
        """The LM step of an encoded tick; False when it gave no output frame to decode."""
        assert tick.codes is not None
        tick.tokens, tick.valid = self.stream_lm.step(tick.codes, torch.from_numpy(tick.execute).to(self.device))
        return bool(tick.valid.any())

    @torch.no_grad()
    def _decode(self, tick: _Tick) -> np.ndarray:
        assert tick.tokens is not None and tick.valid is not None
        self.mimi.set_exec_mask(tick.valid)
        audio_tokens = tick.tokens[:, 1:]
        audio_tokens = torch.where(tick.valid[:, None], audio_tokens, torch.zeros_like(audio_tokens))
        return self.mimi.decode(audio_tokens[:, :, None])[:, 0].float().cpu().numpy()

    def _collect(self, tick: _Tick, pcm_out: np.ndarray) -> list[FrameOutput]:
        assert tick.tokens is not None and tick.valid is not None
        tokens = tick.tokens.cpu().numpy()
        outputs = []
        for index in np.flatnonzero(tick.valid.cpu().numpy()):
            slot = self._slots[index]
            text_token = int(tokens[index, 0])
            eos_fed = bool(tick.eos_fed[index])
            ended = eos_fed and text_token == self.eos_text_id
            tail = slot.outputs + 1 - int(tick.input_frames[index])
            final = ended or (eos_fed and tail >= self.max_tail_frames)
            outputs.append(FrameOutput(
                slot=int(index), index=slot.outputs, pcm=pcm_out[index].copy(),
                text=self.piece(text_token), text_token=text_token,
                audio_tokens=tokens[index, 1:].copy(), final=final,
            ))
            slot.outputs += 1
            if final:
                logger.debug("slot %d done: %d input frames, %d output frames, %s", index, slot.input_frames,
                             slot.outputs, "text EOS" if ended else "tail bound reached")
                self.detach(int(index))
        return outputs

    def piece(self, text_token: int) -> str:
        """The text a client is sent for one token, as moshi's servers do."""
        if text_token in SILENT_TEXT_IDS or not 0 <= text_token < self.tokenizer.vocab_size():
            return ""
        return self.tokenizer.id_to_piece(text_token).replace("▁", " ")

    def decode_text(self, text_tokens: list[int]) -> str:
        """Full transcript of a stream's text tokens (byte-fallback pieces joined properly)."""
        pieces = self.tokenizer.vocab_size()
        return self.tokenizer.decode([t for t in text_tokens if t not in SILENT_TEXT_IDS and 0 <= t < pieces])

    # ----------------------------------------------------------------- internals
    def _active(self, slot: int) -> _Slot:
        if not 0 <= slot < self.batch_size or self._slots[slot].phase is _Phase.FREE:
            raise ValueError(f"slot {slot} has no stream attached")
        return self._slots[slot]

    def _reset(self, indices: list[int], sampling: Sampling | None = None) -> None:
        mask = torch.zeros(self.batch_size, dtype=torch.bool, device=self.device)
        mask[indices] = True
        self.stream_lm.reset(mask, sampling)
        self.mimi.reset_streaming(mask)
        if self._encoder_mimi is not self.mimi:
            self._encoder_mimi.reset_streaming(mask)

    def close(self) -> None:
        """Leaves streaming mode and stops the pipeline's threads: the checkpoint can then serve
        another translator, or train."""
        self._streaming.close()
        for pool in (self._encoder, self._decoder):
            if pool is not None:
                pool.shutdown()

    def __enter__(self) -> BatchedTranslator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _warmup(self) -> None:
        """Runs a few full-batch steps so CUDA graphs are captured before the first stream."""
        indices = [self.attach() for _ in range(self.batch_size)]
        for index in indices:
            self.feed(index, np.zeros(FRAME_SIZE * 4, dtype=np.float32))
        for _ in range(4):
            self.step()
        for index in indices:
            self.detach(index)
        torch.cuda.synchronize(self.device)
