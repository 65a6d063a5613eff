"""Training scripts' command lines: `--help` lists the keys; a mistyped key, a wrong value or
a missing input ends the script with one line naming it (exit 1), never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = ["training.prepare", "training.sft", "training.grpo.train", "training.demo.corpus", "training.demo.codec",
           "training.demo.base"]
PREPARE_YAML = str(Path(__file__).parents[1] / "training/recipes/demo_fr_en/prepare.yaml")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_lists_keys_with_defaults(script):
    result = run(script, "--help")
    assert result.returncode == 0, result.stderr
    assert "keys and defaults:" in result.stdout and "out:" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["training.sft", "lerning_rate=1"], "error: bad configuration"),  # no such key
    (["training.grpo.train", "max_steps=many"], "error: bad configuration"),  # not an int
    (["training.prepare", "workers"], "error: no config file 'workers'"),  # the first bare word is the YAML
    (["training.prepare", PREPARE_YAML, "workers"], "error: overrides must be key=value"),
])
def test_bad_configuration_is_one_line(args, message):
    result = run(*args)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr


def test_missing_or_broken_input_is_one_line(tiny_dir, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("workers: [2\n")
    result = run("training.prepare", str(broken))
    assert result.returncode == 1
    assert f"error: bad configuration ({broken})" in result.stderr and "Traceback" not in result.stderr
    result = run("training.sft", f"data={tmp_path / 'nothing'}", f"model={tiny_dir}", f"out={tmp_path / 'out'}")
    assert result.returncode == 1
    assert "error: no prepared parts" in result.stderr and "Traceback" not in result.stderr
    result = run("training.demo.base", f"corpus={tmp_path / 'nothing'}", f"codec={tmp_path / 'nope'}", f"out={tmp_path / 'b'}")
    assert result.returncode == 1
    assert f"error: no codec in {tmp_path / 'nope'}" in result.stderr and "Traceback" not in result.stderr


def test_half_written_codec_is_one_line(tmp_path):
    codec = tmp_path / "codec"
    codec.mkdir()
    (codec / "mimi_config.json").write_text((Path(__file__).parents[1] / "hibiki/default_model/mimi_config.json").read_text())
    result = run("training.demo.base", f"corpus={tmp_path}", f"codec={codec}", f"out={tmp_path / 'b'}")
    assert result.returncode == 1
    assert "it lacks mimi.safetensors" in result.stderr and "Traceback" not in result.stderr


def test_stages_are_hibiki_subcommands():
    hibiki = str(Path(sys.executable).parent / "hibiki")
    listing = subprocess.run([hibiki, "--help"], capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0 and all(f" {stage} " in listing.stdout for stage in ("prepare", "sft", "grpo"))
    for stage, key in (("prepare", "alignment:"), ("sft", "lora:"), ("grpo", "num_generations:")):
        result = subprocess.run([hibiki, stage, "--help"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and "keys and defaults:" in result.stdout and key in result.stdout
    result = subprocess.run([hibiki, "grpo", "max_steps=many"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "error: bad configuration" in result.stderr and "Traceback" not in result.stderr
