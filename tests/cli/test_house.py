"""The house rules that keep the tree easy to read: small files, small classes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted(p for pkg in ("bitnet_model", "bitnet_tui") for p in (REPO / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_files_stay_under_400_lines_and_classes_under_250(path):
    text = path.read_text(encoding="utf-8")
    assert text.count("\n") <= 400, f"{path.name}: {text.count(chr(10))} lines; split it by job"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            size = node.end_lineno - node.lineno + 1
            assert size <= 250, f"{path.name}: class {node.name} is {size} lines"
