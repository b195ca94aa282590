"""Size of the counting code (`functions/usage` + `functions/fold`) and of docs/counters.md.

Prints one JSON object: per package and in total, the lines as `wc -l` counts them, split into
code, docstrings, comments and blank lines; the lines of docs/counters.md; and each total's
ratio to its target (at most 2,000 lines of counting code, at most 150 lines of docs/counters.md:
a billing design a new engineer can check in an hour).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from _common import emit

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("functions/usage", "functions/fold")
CODE_TARGET = 2000
DOC = "docs/counters.md"
DOC_TARGET = 150


def split_lines(source: str) -> dict[str, int]:
    """A module's lines: total, docstring, comment, blank and code (the rest)."""
    lines = source.splitlines()
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            docstrings.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    blank = {n for n, line in enumerate(lines, 1) if not line.strip()}
    comment = {n for n, line in enumerate(lines, 1) if line.strip().startswith("#")}
    other = len(lines) - len(docstrings | blank | comment)
    return {
        "lines": len(lines),
        "docstring": len(docstrings),
        "comment": len(comment - docstrings),
        "blank": len(blank - docstrings),
        "code": other,
    }


def measure() -> dict[str, Any]:
    packages: dict[str, dict[str, int]] = {}
    for package in PACKAGES:
        totals: dict[str, int] = {}
        for path in sorted((ROOT / package).glob("*.py")):
            for key, value in split_lines(path.read_text(encoding="utf-8")).items():
                totals[key] = totals.get(key, 0) + value
        packages[package] = totals
    lines = sum(p["lines"] for p in packages.values())
    doc_lines = len((ROOT / DOC).read_text(encoding="utf-8").splitlines())
    return {
        "benchmark": "code_size",
        "counting_code_lines": lines,
        "counting_code_to_target_ratio": round(lines / CODE_TARGET, 3),
        "counting_code_target": CODE_TARGET,
        "counters_md_lines": doc_lines,
        "counters_md_to_target_ratio": round(doc_lines / DOC_TARGET, 3),
        "counters_md_target": DOC_TARGET,
        "packages": packages,
    }


if __name__ == "__main__":
    emit(__file__, measure())
