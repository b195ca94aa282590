"""pyproject.toml and requirements*.txt name the same pinned packages (one source cannot drift).

requirements.txt is what the deployed functions get (deploy/package.py copies it);
requirements-dev.txt is what `make venv` installs; pyproject.toml is what `pip install .[ops,dev]`
installs. The runtime pins must equal `[project] dependencies`, the dev file's own pins the union
of the `ops` and `dev` extras.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def pins(lines: list[str], where: str) -> dict[str, str]:
    """name -> `name==version` of requirement lines; `-r` includes are skipped, duplicates fail."""
    found: dict[str, str] = {}
    for raw in lines:
        line = raw.split("#")[0].strip()
        if not line or line.startswith("-r "):
            continue
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name not in found, f"{where}: {name} is listed twice"
        found[name] = f"{name}{requirement.specifier}"
    return found


def disagreements(pyproject: str, runtime: str, dev: str) -> list[str]:
    """Every package whose pin differs between pyproject.toml and the requirements files."""
    project = tomllib.loads(pyproject)["project"]
    extras = project.get("optional-dependencies", {})
    declared_runtime = pins(project.get("dependencies", []), "pyproject dependencies")
    declared_extras = pins(
        [r for name in ("ops", "dev", "openfeature") for r in extras.get(name, [])],
        "pyproject ops+dev extras",
    )
    problems = []
    if "-r requirements.txt" not in [line.strip() for line in dev.splitlines()]:
        problems.append("requirements-dev.txt: does not include requirements.txt (-r)")
    for what, declared, listed in (
        ("requirements.txt", declared_runtime, pins(runtime.splitlines(), "requirements.txt")),
        ("requirements-dev.txt", declared_extras, pins(dev.splitlines(), "requirements-dev.txt")),
    ):
        for name in sorted(declared.keys() | listed.keys()):
            if declared.get(name) != listed.get(name):
                problems.append(
                    f"{what}: {listed.get(name, 'absent')} but pyproject.toml: "
                    f"{declared.get(name, 'absent')}"
                )
    return problems


def test_requirements_files_agree_with_pyproject() -> None:
    problems = disagreements(
        (ROOT / "pyproject.toml").read_text(),
        (ROOT / "requirements.txt").read_text(),
        (ROOT / "requirements-dev.txt").read_text(),
    )
    assert problems == [], "make pyproject.toml and requirements*.txt agree"


def test_a_disagreement_is_reported() -> None:
    """Not vacuous: a version bump in one place only, a missing package, a missing include."""
    pyproject = (
        '[project]\ndependencies = ["pydantic==2.14.3", "google-events==0.14.0"]\n'
        '[project.optional-dependencies]\nops = ["tqdm==4.70.1"]\ndev = ["ruff==0.17.5"]\n'
    )
    assert (
        disagreements(
            pyproject,
            "pydantic==2.14.3\ngoogle-events==0.14.0\n",
            "-r requirements.txt\nruff==0.17.5\ntqdm==4.70.1\n",
        )
        == []
    )
    assert disagreements(
        pyproject,
        "pydantic==2.15.0\ngoogle-events==0.14.0\n",
        "ruff==0.17.5\n",
    ) == [
        "requirements-dev.txt: does not include requirements.txt (-r)",
        "requirements.txt: pydantic==2.15.0 but pyproject.toml: pydantic==2.14.3",
        "requirements-dev.txt: absent but pyproject.toml: tqdm==4.70.1",
    ]


def test_runtime_dependencies_hold_no_tool_of_the_operators_or_developers() -> None:
    """The deployed functions get requirements.txt: no CLI, test or lint package in it."""
    runtime = pins((ROOT / "requirements.txt").read_text().splitlines(), "requirements.txt")
    assert not {"typer", "rich", "matplotlib", "pytest", "pyyaml", "import-linter"} & runtime.keys()
