"""Kyutai's published configs at full size, random bf16 weights, through the real CLI on this machine.

For each preset: writes the checkpoint (Kyutai's shapes, standard Mimi, a 48k-piece
tokenizer), then runs `hibiki info` and `hibiki translate` on a few seconds of audio as
subprocesses, and prints each one's wall time and peak memory (max RSS). The checkpoint
is built in a process of its own too: Linux carries a parent's peak RSS into its children
across fork and exec, so this script stays small for their figures to be theirs. Not part
of the test suite: a 3B model takes minutes and ~20 GB here.

    python bench/kyutai_full_size.py --out /tmp/kyutai-full            # every preset
    python bench/kyutai_full_size.py --out /tmp/kyutai-full --preset hibiki-zero-3b --dtype fp32
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hibiki.audio import SAMPLE_RATE, write_wav
from hibiki.presets import KYUTAI_REPOS


def run_measured(command: list[str]) -> tuple[float, float, str]:
    """Runs a command in its own process; returns (seconds, its peak RSS in GB, its last output line)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=dict(os.environ, HF_HUB_OFFLINE="1"))
        _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage
        seconds = time.perf_counter() - start
        out.seek(0), err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{err.read()[-3000:]}")
        return seconds, usage.ru_maxrss / 1e6, (out.read().strip().splitlines() or [""])[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="Where the checkpoints are written (~7 GB each).")
    parser.add_argument("--preset", action="append", choices=sorted(KYUTAI_REPOS), help="Repeatable (default: all).")
    parser.add_argument("--dtype", default="auto", help="--dtype of hibiki translate (auto, bf16, fp16, fp32).")
    parser.add_argument("--seconds", type=float, default=3.0, help="Length of the audio translated.")
    args = parser.parse_args()
    wav = args.out / "input.wav"
    args.out.mkdir(parents=True, exist_ok=True)
    write_wav(wav, (np.random.default_rng(0).standard_normal(round(args.seconds * SAMPLE_RATE)) * 0.1).astype(np.float32))
    hibiki = [sys.executable, "-m", "hibiki.cli"]
    rows = []
    for preset in tqdm(args.preset or sorted(KYUTAI_REPOS), desc="presets"):
        directory = args.out / preset
        if not (directory / "config.json").is_file():
            build = (f"import torch; from hibiki.random_checkpoint import build_random_checkpoint; "
                     f"build_random_checkpoint({str(directory)!r}, {preset!r}, dtype=torch.bfloat16)")
            build_s, build_gb, _ = run_measured([sys.executable, "-c", build])
            tqdm.write(f"{preset}: built in {build_s:.0f} s, peak {build_gb:.1f} GB")
        described = json.loads(subprocess.run([*hibiki, "info", str(directory), "--json"], capture_output=True,
                                              text=True, check=True).stdout)
        info_s, info_gb, _ = run_measured([*hibiki, "info", str(directory)])
        translate_s, translate_gb, summary = run_measured(
            [*hibiki, "translate", str(wav), "--model", str(directory), "--out", str(args.out / f"{preset}-out"),
             "--dtype", args.dtype, "--greedy", "--max-tail", "1"])
        rows.append((preset, described["lm_parameters"] / 1e9, described["stream_convention"],
                     described["voice_transfer_conditioner"], info_s, info_gb, translate_s, translate_gb, summary))
    print(f"\n{'preset':<26} {'params B':>8} {'convention':>11} {'cond':>5} {'info s':>7} {'GB':>5} "
          f"{'translate s':>11} {'GB':>5}  (GB: peak RSS of that process)")
    for preset, params, convention, cond, info_s, info_gb, tr_s, tr_gb, summary in rows:
        print(f"{preset:<26} {params:>8.2f} {convention:>11} {str(cond):>5} {info_s:>7.1f} {info_gb:>5.1f} "
              f"{tr_s:>11.1f} {tr_gb:>5.1f}  {summary}")


if __name__ == "__main__":
    main()
