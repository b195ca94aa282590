"""Docs generated from code stay current."""

from __future__ import annotations

from pathlib import Path

from functions.table import markdown_table

ROOT = Path(__file__).resolve().parents[2]


def test_readme_function_table_matches_the_function_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("<!-- functions-table:start -->\n") + len(
        "<!-- functions-table:start -->\n"
    )
    end = readme.index("<!-- functions-table:end -->")
    assert readme[start:end] == markdown_table(), "README's function table is stale"
