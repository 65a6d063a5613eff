"""The GPU check of Kyutai's real shapes: one command, one table, about 8 minutes on one H100/H200.

Hibiki-Zero's real shape with random bf16 weights through the batched engine at B = 1, 16,
64, 128, 256 (moshi's CUDA graphs), the Kyutai equivalence tests on the GPU, the service
load benchmark against that model, and supervised-stage steps for the 1B shape (full,
bf16 autocast, gradient checkpointing) and for Zero's (LoRA). Each part is its own process
under a time limit, so a part that fails or runs out of time is a row of the table, not
the end of the check; logs and the table land in --out.

    python bench/gpu_check.py --out /tmp/gpu-check              # on the GPU (bench/gpu_check.sh on a bare one)
    python bench/gpu_check.py --out /tmp/gpu-smoke --smoke      # CPU: reduced shapes, the same code path
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

from hibiki.random_checkpoint import build_random_checkpoint

BENCH = Path(__file__).parent
ROOT = BENCH.parent


class Check:
    """Runs the parts within one overall deadline and collects the table's rows."""

    def __init__(self, out: Path, budget_s: float) -> None:
        self.out, self.deadline = out, time.monotonic() + budget_s
        self.rows: list[tuple[str, str, str, str]] = []

    def run(self, name: str, command: list[str], limit_s: float, env: dict[str, str] | None = None) -> str | None:
        """Runs one part; returns its output, or None after adding a row saying why it failed."""
        limit = min(limit_s, self.deadline - time.monotonic())
        if limit < 10:
            self.rows.append((name, "-", "skipped", "the overall time budget is spent"))
            return None
        log = self.out / f"{name.replace(' ', '_')}.log"
        print(f"[{time.strftime('%H:%M:%S')}] {name}: {' '.join(command)} (limit {limit:.0f} s)", flush=True)
        try:
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=limit,
                                  env=dict(os.environ, **(env or {})))
        except subprocess.TimeoutExpired as e:
            log.write_text(str(e.stdout or "") + str(e.stderr or ""))
            self.rows.append((name, "-", f"timed out after {limit:.0f} s", f"see {log.name}"))
            return None
        log.write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["?"])[-1][:120]
            self.rows.append((name, "-", f"failed (exit {done.returncode})", last))
            return None
        return done.stdout

    def table(self) -> str:
        lines = ["| part | setting | figure | detail |", "|---|---|---|---|"]
        lines += [f"| {' | '.join(row)} |" for row in self.rows]
        return "\n".join(lines)


def gib(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} GiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="Logs, the checkpoint and gpu_check.md go here.")
    parser.add_argument("--smoke", action="store_true", help="Reduced shapes and tiny sizes (CPU), to test the script.")
    parser.add_argument("--budget-s", type=float, default=450.0, help="Overall deadline of the parts (seconds).")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    smoke = args.smoke
    args.out.mkdir(parents=True, exist_ok=True)
    check = Check(args.out, args.budget_s)
    python = sys.executable

    start = time.perf_counter()
    zero = build_random_checkpoint(args.out / "zero", "hibiki-zero-3b", dtype=torch.bfloat16, reduced=smoke)
    check.rows.append(("build", "hibiki-zero-3b" + (" (reduced)" if smoke else ""), f"{time.perf_counter() - start:.0f} s",
                       "random bf16 weights, Kyutai's file names"))

    slots = [1, 2] if smoke else [1, 16, 64, 128, 256]
    engine_json = args.out / "engine.json"
    if check.run("engine", [python, str(BENCH / "engine_throughput.py"), "--model", str(zero), "--device", device,
                            "--slots", *map(str, slots), "--steps", "5" if smoke else "20", "--warmup", "2" if smoke else "3",
                            "--json", str(engine_json)], limit_s=200) is not None:
        for r in json.loads(engine_json.read_text()):
            check.rows.append(("engine tick", f"B={r['slots']}", f"p50 {r['median_ms']:.1f} / p95 {r['p95_ms']:.1f} ms",
                               f"{r['realtime_streams']} streams in real time, {gib(r['gpu_peak_gb'])}"))

    output = check.run("equivalence", [python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                       "tests/test_kyutai_equivalence.py"], limit_s=120, env={"HIBIKI_TEST_DEVICE": device})
    if output is not None:
        summary = re.findall(r"\d+ passed.*", output)
        check.rows.append(("equivalence", f"Kyutai's code vs the engine on {device}", summary[-1] if summary else "?",
                           "moshi run_inference (1B/2B, CFG 1/3), hibiki-zero (both fusers)"))

    service_json = args.out / "service.json"
    server_slots = 2 if smoke else 64
    clients = [1, 2] if smoke else [16, 64]
    if check.run("service", [python, str(BENCH / "service_load.py"), "--model", str(zero), "--device", device,
                             "--slots", str(server_slots), "--clients", *map(str, clients),
                             "--seconds", "2" if smoke else "8", "--server-log", str(args.out / "server.log"),
                             "--json", str(service_json)], limit_s=150) is not None:
        for r in json.loads(service_json.read_text()):
            check.rows.append(("service", f"{r['clients']:.0f} clients, {server_slots} slots",
                               f"{r['kept']:.0f} kept in real time, p95 {r['p95_ms']:.0f} ms",
                               f"{r['refused']:.0f} refused, {r['late_ticks']:.0f} late ticks"))

    frames = "20" if smoke else "375"  # 30 s examples
    for name, model, options in (
        ("sft 1b", ["--preset", "hibiki-1b"] + (["--reduced"] if smoke else []),
         ["--gradient-checkpointing", "--batch-size", "1" if smoke else "8"]),
        ("sft zero", ["--model", str(zero)], ["--lora", "--batch-size", "1" if smoke else "4"]),
    ):
        result = args.out / f"{name.replace(' ', '_')}.json"
        if check.run(name, [python, str(BENCH / "sft_throughput.py"), *model, *options, "--device", device,
                            "--frames", frames, "--steps", "1" if smoke else "3", "--json", str(result)],
                     limit_s=120) is not None:
            r = json.loads(result.read_text())
            setting = " ".join(options) + f" --frames {frames}"
            check.rows.append((name, setting, f"{r['steps_per_s']:.2f} steps/s",
                               f"{r['frames_per_s']:.0f} frames/s, {r['params_m']:.0f}M params, peak {gib(r['gpu_peak_gb'])}"))

    machine = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    report = (f"GPU check on {machine}, torch {torch.__version__}"
              f"{' (smoke: reduced shapes)' if smoke else ''}; command: python bench/gpu_check.py --out {args.out}"
              f"{' --smoke' if smoke else ''}\n\n{check.table()}\n")
    (args.out / "gpu_check.md").write_text(report)
    print("\n" + report)


if __name__ == "__main__":
    main()
