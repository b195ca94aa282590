"""The tree reads as the architecture: every package says what lives in it; modules stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "functions", "ops", "deploy", "devstack")
MAX_LINES = 400
"""About a few screens (STYLE.md); past it a module is split by job, not by size."""
OVERSIZE_FOR_NOW: frozenset[str] = frozenset()
"""Modules allowed over MAX_LINES for now (none: every one of them was split)."""


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _package_dirs() -> list[Path]:
    return sorted({p.parent for p in _modules()})


@pytest.mark.parametrize("directory", _package_dirs(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_package_opens_with_a_one_line_docstring(directory: Path) -> None:
    init = directory / "__init__.py"
    assert init.is_file(), f"{directory.relative_to(ROOT)} is a namespace package: add __init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text()))
    assert doc, f"{init.relative_to(ROOT)}: no docstring saying what lives there"
    first = doc.splitlines()[0]
    assert first.strip(), f"{init.relative_to(ROOT)}: the docstring opens with a blank line"
    assert len(first) <= 96, f"{init.relative_to(ROOT)}: {first!r} is not one line"


def test_no_module_is_longer_than_a_few_screens() -> None:
    lines = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines()) for p in _modules()}
    too_long = sorted(f"{m}: {n}" for m, n in lines.items() if n > MAX_LINES)
    assert [m for m in too_long if m.split(":")[0] not in OVERSIZE_FOR_NOW] == []
