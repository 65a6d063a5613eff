"""Trains a small Mimi (moshi's `MimiModel`, 24 kHz, 80 ms frames, split RVQ) on the demo corpus.

    python -m training.demo.codec [CONFIG.yaml] [key=value ...]      (--help lists the keys)

Losses: multi-resolution STFT (auraloss) + L1 on the waveform + the RVQ commitment
penalty; the codebooks follow moshi's own EMA updates in training mode, and, as in Mimi's
training, a share of the batch items skips quantization (`no_quantization_rate`) so the
encoder and decoder learn as an autoencoder while the codebooks catch up. No adversarial
loss: on espeak-ng's clean synthetic voices the reconstruction losses are what pays.
Segments are drawn at random from French and English training audio held in memory (on
the GPU when there is one, so a step never waits for disk). `max_minutes` stops a run at a
time budget, saving as at the last step. `decoder_only=true` (with `init=`) trains the
decoder side alone on what the frozen encoder and codebooks give, exactly the engine's
encode -> codes -> decode path: the codes an LM was trained on keep their meaning, so the
better decoder drops into a trained model without preparing its data again, and
`audio_columns=[target_audio]` spends it on the only speech the decoder ever voices.
The codec is saved in Kyutai's Mimi format
(OUT/mimi.safetensors + OUT/mimi_config.json, loadable with `moshi.models.loaders.get_mimi`
or `hibiki.checkpoint.load_mimi`); OUT/state.pt resumes a killed run.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import auraloss
import numpy as np
import soundfile
import torch
from moshi.models import MimiModel, loaders
from tqdm import tqdm

from hibiki.audio import SAMPLE_RATE
from hibiki.checkpoint import MIMI_CONFIG_NAME, MIMI_NAME, load_mimi, write_mimi
from hibiki.files import atomic_path
from hibiki.presets import mimi_config
from training.config import run_script

logger = logging.getLogger("hibiki.codec")


@dataclass
class CodecConfig:
    corpus: str = "out/demo_corpus"
    out: str = "out/demo_codec"
    dimension: int = 256
    n_filters: int = 16  # the first conv layers run at 24 kHz: their width sets the streaming cost
    transformer_layers: int = 2
    n_q: int = 8
    bins: int = 2048
    steps: int = 20000
    batch_size: int = 8
    segment_s: float = 1.92  # 24 frames
    lr: float = 3e-4
    stft_weight: float = 1.0
    l1_weight: float = 0.1
    commitment_weight: float = 1.0
    no_quantization_rate: float = 0.5  # share of batch items that bypass the RVQ while training
    max_minutes: float = 0.0  # stop (and save) after this much training time; 0: no limit
    device: str = "auto"  # auto: cuda when available
    init: str = ""  # a codec directory (Kyutai Mimi format) to start from: weights and codebooks, fresh optimizer
    decoder_only: bool = False  # freeze the encoder and codebooks (needs init): a trained LM's codes stay valid
    audio_columns: list[str] = field(default_factory=lambda: ["audio", "target_audio"])  # manifest columns to train on
    log_every: int = 50
    save_every: int = 500
    threads: int = 0  # torch CPU threads (0: torch's default)
    seed: int = 0


def build_codec(config: CodecConfig, device: str | torch.device = "cpu") -> tuple[MimiModel, dict]:
    spec = mimi_config(config.dimension, config.n_filters, config.transformer_layers, config.n_q, config.bins)
    mimi = loaders.get_mimi(None, json.loads(json.dumps(spec)), device=device, num_codebooks=config.n_q)
    # A training-only switch, set on the module rather than in the saved config.
    for rvq in (mimi.quantizer.rvq_first, mimi.quantizer.rvq_rest):
        rvq.no_quantization_rate = config.no_quantization_rate
    return mimi, spec


class Segments:
    """Random fixed-length segments of the corpus's training audio (the manifest's `columns`:
    both languages by default), all of it held as one int16 tensor on the training device."""

    def __init__(self, corpus: Path, segment: int, seed: int, device: torch.device, columns: list[str]) -> None:
        manifest = corpus / "train" / "manifest.jsonl"
        if not manifest.is_file():
            raise FileNotFoundError(f"{manifest} not found: build the corpus first (python -m training.demo.corpus out={corpus})")
        rows = [json.loads(line) for line in manifest.read_text().splitlines()]
        files = [corpus / "train" / r[key] for r in rows for key in columns if r.get(key)]
        if not files:
            raise FileNotFoundError(f"no training audio in columns {list(columns)} of {manifest}; the corpus writes "
                                    "'audio' (French) and 'target_audio' (English): build it first, or name those")
        clips = [soundfile.read(str(f), dtype="int16")[0] for f in tqdm(files, desc="loading audio", unit="file", disable=None)]
        clips = [np.pad(c, (0, max(0, segment - len(c)))) for c in clips]
        self.audio = torch.from_numpy(np.concatenate(clips)).to(device)
        # A segment starts anywhere a whole segment fits inside one clip.
        offsets = np.cumsum([0] + [len(c) for c in clips[:-1]])
        starts = [np.arange(0, len(c) - segment + 1, 480) + offset for c, offset in zip(clips, offsets)]
        self.starts = torch.from_numpy(np.concatenate(starts)).to(device)
        self.window = torch.arange(segment, device=device)
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.seconds = len(self.audio) / SAMPLE_RATE

    def batch(self, size: int) -> torch.Tensor:
        pick = torch.randint(len(self.starts), (size,), generator=self.generator, device=self.starts.device)
        jitter = torch.randint(480, (size,), generator=self.generator, device=self.starts.device)
        index = (self.starts[pick] + jitter).clamp(max=len(self.audio) - len(self.window))[:, None] + self.window
        return (self.audio[index].float() / 32768.0)[:, None]


def _freeze_encoder_side(mimi: MimiModel) -> None:
    """Everything up to the codes stops learning; the quantizer's output projections, which
    turn codes into the decoder's input, go on learning with the decoder."""
    for module in (mimi.encoder, mimi.encoder_transformer, getattr(mimi, "downsample", None)):
        if module is not None:
            module.requires_grad_(False)
    for name, parameter in mimi.quantizer.named_parameters():
        if "output_proj" not in name:
            parameter.requires_grad_(False)
    mimi.quantizer.ema_frozen_(True)


def train(config: CodecConfig) -> dict:
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if config.device == "auto" else config.device)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    out = Path(config.out)
    mimi, spec = build_codec(config, device)
    if config.init:
        mimi.load_state_dict(load_mimi(config.init, device).state_dict())
        logger.info("started from the codec in %s", config.init)
    elif config.decoder_only:
        raise ValueError("decoder_only=true trains the decoder of an existing codec: give it with init=DIR")
    if config.decoder_only:
        _freeze_encoder_side(mimi)
    trainable = [p for p in mimi.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, betas=(0.8, 0.99))
    step, history = 0, []
    state_path = out / "state.pt"
    if state_path.is_file():
        state = torch.load(state_path, weights_only=False, map_location=device)
        mimi.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, history = state["step"], state["history"]
        torch.set_rng_state(state["rng"])
        logger.info("resumed at step %d", step)
    segments = Segments(Path(config.corpus), round(config.segment_s * SAMPLE_RATE), config.seed + step, device,
                        config.audio_columns)
    logger.info("%.2f h of training audio on %s", segments.seconds / 3600, device)
    stft = auraloss.freq.MultiResolutionSTFTLoss(fft_sizes=[2048, 1024, 512, 256], hop_sizes=[512, 256, 128, 64],
                                                 win_lengths=[2048, 1024, 512, 256]).to(device)
    mimi.train(not config.decoder_only)  # eval mode: the frozen codebooks quantize every item, as in use
    start, bar = time.perf_counter(), tqdm(total=config.steps, initial=step, desc="codec", unit="step", disable=None)
    deadline = start + 60 * config.max_minutes if config.max_minutes > 0 else float("inf")
    while step < config.steps:
        x = segments.batch(config.batch_size)
        if config.decoder_only:
            with torch.no_grad():
                codes = mimi.encode(x)
            y, penalty = mimi.decode(codes)[..., :x.shape[-1]], torch.zeros((), device=device)
        else:
            result = mimi(x)
            y, penalty = result.x, result.penalty
        spectral = stft(y, x)
        l1 = (y - x).abs().mean()
        loss = config.stft_weight * spectral + config.l1_weight * l1 + config.commitment_weight * penalty
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        step += 1
        bar.update(1)
        if step % config.log_every == 0 or step == 1:
            record = {"step": step, "stft": spectral.detach().item(), "l1": l1.detach().item(), "commitment": penalty.detach().item(),
                      "elapsed_s": round(time.perf_counter() - start, 1)}
            history.append(record)
            bar.set_postfix(stft=f"{record['stft']:.3f}", l1=f"{record['l1']:.4f}")
        out_of_time = time.perf_counter() > deadline
        if step % config.save_every == 0 or step == config.steps or out_of_time:
            # tqdm is silent when the output is a file (a background run): the log shows where it is
            logger.info("step %d: stft %.3f, l1 %.4f (last logged)", step, history[-1]["stft"], history[-1]["l1"])
            mimi.eval()
            write_mimi(out, mimi, spec)
            mimi.train(not config.decoder_only)
            with atomic_path(state_path) as tmp:
                torch.save({"model": mimi.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                            "history": history, "rng": torch.get_rng_state(), "config": asdict(config)}, tmp)
        if out_of_time:
            logger.info("time budget of %.1f min reached at step %d", config.max_minutes, step)
            break
    bar.close()
    return {"steps": step, "history": history, "out": str(out)}


def main() -> None:
    _, result = run_script(CodecConfig, __doc__, train)
    last = result["history"][-1] if result["history"] else {}
    print(f"codec trained to step {result['steps']}: multi-resolution STFT loss {last.get('stft', float('nan')):.3f}, "
          f"L1 {last.get('l1', float('nan')):.4f}; saved in {result['out']} ({MIMI_NAME}, {MIMI_CONFIG_NAME})")


if __name__ == "__main__":
    main()
