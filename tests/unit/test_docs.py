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


def test_console_script_points_at_a_callable() -> None:
    import importlib
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    target = project["project"]["scripts"]["blueprint"]
    module, _, attr = target.partition(":")
    assert callable(getattr(importlib.import_module(module), attr))
    found = project["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {"shared*", "functions*"} <= set(found)
