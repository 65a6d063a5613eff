"""Imports flow one way: `hibiki/` is the core, and imports none of `service/`, `training/`, `eval/`;
`eval/` imports nothing of `training/`; the leaves (constants, settings, helpers) import nothing of the project."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


PROJECT = {"hibiki", "service", "training", "eval"}
LEAVES = ["hibiki/tokens.py", "hibiki/sampling.py", "hibiki/audio.py", "hibiki/files.py", "hibiki/stream_convention.py"]


def project_imports(package: str, root: Path = ROOT) -> set[tuple[str, str]]:
    """(file, imported top-level package) for every import in a package's modules, lazy ones included."""
    found = set()
    for path in (root / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            found |= {(str(path.relative_to(root)), name.split(".")[0]) for name in names}
    return found


def test_a_wrong_way_import_is_seen(tmp_path):
    (tmp_path / "hibiki").mkdir()
    (tmp_path / "hibiki/engine.py").write_text("import torch\n\ndef f():\n    from training.sft import main\n")
    assert project_imports("hibiki", tmp_path) == {("hibiki/engine.py", "torch"), ("hibiki/engine.py", "training")}


def test_the_core_imports_no_outer_layer():
    outward = {(f, top) for f, top in project_imports("hibiki") if top in PROJECT - {"hibiki"}}
    assert not outward


def test_evaluation_imports_nothing_of_training():
    assert not {(f, top) for f, top in project_imports("eval") if top == "training"}


def test_the_leaves_import_nothing_of_the_project():
    imports = project_imports("hibiki")
    assert all((ROOT / leaf).is_file() for leaf in LEAVES)
    assert not {(f, top) for f, top in imports if f in LEAVES and top in PROJECT}


def test_light_modules_load_without_torch():
    """Configs, request parsing and the TTS side of data preparation need no model code."""
    light = ["hibiki.sampling", "hibiki.tokens", "hibiki.audio", "hibiki.words", "training.tts"]
    code = f"import sys; import {', '.join(light)}; sys.exit('torch' in sys.modules or 'moshi' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=120).returncode == 0
