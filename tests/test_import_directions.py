"""Imports flow one way: `hibiki/` is the core, and imports none of `service/`, `training/`, `eval/`;
`eval/` imports nothing of `training/`."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parent.parent


def project_imports(package: str) -> set[tuple[str, str]]:
    """(file, imported top-level project package) for every import in a package's modules."""
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            found |= {(str(path.relative_to(ROOT)), name.split(".")[0]) for name in names}
    return found


def test_the_core_imports_no_outer_layer():
    outward = {(f, top) for f, top in project_imports("hibiki") if top in {"service", "training", "eval"}}
    assert not outward


def test_evaluation_imports_nothing_of_training():
    assert not {(f, top) for f, top in project_imports("eval") if top == "training"}


def test_the_token_constants_are_a_leaf():
    assert {top for f, top in project_imports("hibiki") if f == "hibiki/tokens.py"} == set()
