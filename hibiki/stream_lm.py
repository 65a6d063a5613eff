"""B streams of source codes stepped through moshi's LMGen: the one place the project does it.

The engine (`hibiki.engine`) puts Mimi and a stream's life around it; GRPO's rollouts
(`training.grpo.rollout`) feed it prepared source codes and record the log-prob of every
token it samples. Both therefore prime a stream, feed its input EOS and undo the delays
the same way, and `tests/test_grpo_rollout.py` checks that greedy rollouts are the
engine's greedy output token for token.

Priming follows the checkpoint's `StreamConvention`: moshi's run_inference takes one
step whose input the model never reads; hibiki-zero feeds `max_delay` frames of
Mimi-encoded silence. The input-EOS frame is every source code at Mimi's cardinality.

With cfg_coef 1 each slot samples its own way (`SlotSampling`): LMGen is set to argmax
and the logits are shaped per slot before it picks. A `Recorder` sees the raw logits
(before any shaping) and the sampled tokens, as they come.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Protocol

import torch
from moshi.models import LMGen

from hibiki.checkpoint import Checkpoint
from hibiki.sampling import Sampling
from hibiki.slot_sampling import SlotSampling


class Recorder(Protocol):
    """What a step sampled and from which raw logits ([B, card] each), in sampling order:
    text logits, text tokens [B], then per codebook its logits, then audio tokens [B, dep_q]."""

    def text_logits(self, logits: torch.Tensor) -> None: ...
    def text_tokens(self, tokens: torch.Tensor) -> None: ...
    def audio_logits(self, logits: torch.Tensor) -> None: ...
    def audio_tokens(self, tokens: torch.Tensor) -> None: ...


class StreamLM:
    """LMGen in streaming mode over `slots` streams; `close()` (or `with`) leaves it, so the
    LM can train or serve another StreamLM afterwards."""

    def __init__(self, checkpoint: Checkpoint, slots: int, sampling: Sampling, recorder: Recorder | None = None):
        sampling.check()
        if sampling.cfg_coef != 1.0 and not checkpoint.voice_conditioner:
            raise ValueError(
                f"cfg_coef={sampling.cfg_coef:g} needs a checkpoint with a voice-transfer conditioner "
                "(original Hibiki's); this one has none, so only cfg_coef=1 is accepted")
        lm = checkpoint.lm
        if lm.is_streaming:
            raise ValueError("this checkpoint's LM already serves another translator or rollout; close that one "
                             "or load the checkpoint again")
        self.lm, self.sampling, self.recorder = lm, sampling, recorder
        self.device = lm.device
        self.max_delay = max(lm.delays)
        self.n_source = lm.n_q - lm.dep_q
        self.eos_code = checkpoint.mimi.cardinality
        self.priming = self._priming_codes(checkpoint)
        self.slot_sampling = SlotSampling(lm, slots, sampling) if sampling.cfg_coef == 1.0 else None
        lm_sampling = Sampling(temp=1.0, top_k=0, temp_text=1.0, top_k_text=0, greedy=True) \
            if self.slot_sampling else sampling
        self.lm_gen = LMGen(
            lm, **lm_sampling.lm_gen_kwargs(), condition_tensors=checkpoint.conditions(slots, sampling.cfg_coef),
            support_out_of_sync=True, on_text_logits_hook=self._on_text_logits,
            on_text_hook=recorder.text_tokens if recorder else None,
            on_audio_hook=recorder.audio_tokens if recorder else None)
        self._forward_depformer = lm.forward_depformer
        lm.forward_depformer = self._depformer
        self._streaming: ExitStack | None = self.lm_gen.streaming(slots)

    def _priming_codes(self, checkpoint: Checkpoint) -> torch.Tensor:
        """[n_source, P]: the codes of a stream's P priming steps."""
        if not checkpoint.convention.silence_warmup:
            return torch.zeros(self.n_source, 1, dtype=torch.long, device=self.device)  # never read
        silence = torch.zeros(1, 1, checkpoint.mimi.frame_size * self.max_delay, device=self.device)
        with torch.no_grad():
            return checkpoint.mimi.encode(silence)[0]

    def _on_text_logits(self, logits: torch.Tensor) -> None:
        if self.recorder is not None:
            self.recorder.text_logits(logits[:, 0, 0])
        if self.slot_sampling is not None:
            self.slot_sampling.shape_text(logits)

    def _depformer(self, *args, **kwargs) -> torch.Tensor:
        logits = self._forward_depformer(*args, **kwargs)
        if self.recorder is not None:
            self.recorder.audio_logits(logits[:, 0, 0])
        return self.slot_sampling.shape_audio(logits) if self.slot_sampling is not None else logits

    def check_stream_sampling(self, sampling: Sampling) -> None:
        """Raises ValueError if a stream cannot have these settings in this batch."""
        sampling.check()
        if sampling.cfg_coef != self.sampling.cfg_coef:
            raise ValueError(f"cfg_coef is the batch's setting ({self.sampling.cfg_coef:g}); a stream cannot change it")
        if self.slot_sampling is None:
            if sampling != self.sampling:
                raise ValueError("with classifier-free guidance (cfg_coef != 1) every stream samples with the batch's settings")
        else:
            self.slot_sampling.check(sampling)

    def reset(self, mask: torch.Tensor, sampling: Sampling | None = None) -> None:
        """Starts new streams in the `mask` slots, with `sampling` (checked) or the batch's."""
        self.lm_gen.reset_streaming(mask)
        if self.slot_sampling is not None:
            for slot in mask.nonzero()[:, 0].tolist():
                self.slot_sampling.set(slot, sampling or self.sampling)

    @torch.no_grad()
    def step(self, codes: torch.Tensor, execute: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Steps the `execute` slots on source codes [B, n_source, 1]: (tokens [B, 1 + dep_q] of
        the output frame each slot completed, valid [B]: the slots that completed one)."""
        self.lm_gen.set_exec_mask(execute)
        tokens = self.lm_gen.step(codes)
        assert tokens is not None  # support_out_of_sync: always a tensor, -2 where not generated yet
        tokens = tokens[:, :, 0]
        return tokens, execute & (tokens[:, 0] >= 0)

    def close(self) -> None:
        if self._streaming is not None:
            self._streaming.close()
            self._streaming = None
            del self.lm.forward_depformer  # the class's method again

    def __enter__(self) -> StreamLM:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
