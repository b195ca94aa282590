"""The first `make run` / `make test` says what it installs instead of a silent minute."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _install_recipe() -> list[str]:
    """The recipe lines of the target that creates .venv and installs into it."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("$(STAMP):"))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def test_the_install_announces_itself_and_shows_pips_progress() -> None:
    recipe = _install_recipe()
    said = " ".join(line for line in recipe if line.startswith("@echo"))
    assert "installing the pinned dependencies" in said
    assert "first run only, about a minute" in said
    dependencies = [line for line in recipe if "-r requirements-dev.txt" in line]
    assert dependencies, recipe
    assert all("--quiet" not in line and " -q" not in line for line in dependencies)
    # Every run target depends on the install, so the first `make run` and `make test` show it.
    text = (ROOT / "Makefile").read_text()
    assert "\nrun: $(STAMP)\n" in text
    assert "\ntest: $(STAMP)\n" in text
