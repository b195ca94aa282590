"""The packaged functions source stands on its own: no path into tests/, ops/, deploy/, devstack/
or the repo."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from deploy import package
from functions.table import FUNCTIONS

ROOT = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter: -I ignores PYTHON* variables, the script's and the current
# directory; sys.path is then the package dir, the standard library and site-packages only.
PROBE = r"""
import importlib.abc, json, sys, sysconfig
src = sys.argv[1]
dev_only = frozenset(json.loads(sys.argv[3]))


class DevOnly(importlib.abc.MetaPathFinder):
    # Dev-only distributions are installed here, not in the deployed function: hide them.

    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in dev_only:
            raise ModuleNotFoundError(f"No module named {name!r} (dev-only dependency)", name=name)
        return None


sys.meta_path.insert(0, DevOnly())
allowed = {sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib"),
           sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
sys.path[:] = [src] + [p for p in sys.path if p in allowed or p.endswith(".zip")
                       or p.endswith("lib-dynload")]
import importlib, pkgutil
import main
from functions_framework import create_app
# main imports each function's package on its first event (a cheap cold start): import every
# module of functions/ as those first events would, so a broken one shows here.
import functions
for module in pkgutil.walk_packages(functions.__path__, "functions."):
    importlib.import_module(module.name)
entry_points = {}
for name in json.loads(sys.argv[2]):
    fn = getattr(main, name)
    app = create_app(target=name, source=src + "/main.py", signature_type="cloudevent")
    entry_points[name] = callable(fn) and app is not None
files = sorted({getattr(m, "__file__", None) or "" for m in list(sys.modules.values())})
print(json.dumps({"entry_points": entry_points, "files": files, "path": sys.path}))
"""


ALWAYS_THERE = frozenset({"pip", "setuptools", "wheel"})
"""Installer tooling present in every Python environment, the functions runtime's included."""


def runtime_distributions() -> set[str]:
    """requirements.txt and everything it pulls in (extras and markers honoured)."""
    todo = [
        Requirement(line.split("#")[0].strip())
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    seen: set[str] = set()
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        for text in metadata.requires(requirement.name) or []:
            dependency = Requirement(text)
            extras = requirement.extras or {""}
            if dependency.marker is None or any(
                dependency.marker.evaluate({"extra": extra}) for extra in extras
            ):
                todo.append(dependency)
    return seen


def dev_only_modules() -> list[str]:
    """Top-level modules that only dev-only distributions (tests, lint, CLI extras) provide."""
    runtime = runtime_distributions() | ALWAYS_THERE
    return sorted(
        module
        for module, dists in metadata.packages_distributions().items()
        if not any(canonicalize_name(d) in runtime for d in dists)
    )


def _not_shipped(src: Path, modules: list[str]) -> list[str]:
    """Modules to hide, less those the package ships itself (the project's own editable install
    provides `shared`/`functions` too; the packaged copies must be the ones imported)."""
    return [m for m in modules if not (src / m).exists() and not (src / f"{m}.py").exists()]


def probe(
    src: Path, names: list[str], hidden: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Import the packaged source in a fresh interpreter without the dev tree or dev-only deps."""
    return subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            PROBE,
            str(src),
            json.dumps(names),
            json.dumps(_not_shipped(src, dev_only_modules() if hidden is None else hidden)),
        ],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return package.build(tmp_path_factory.mktemp("pkg") / "functions-src")


def test_layout(built: Path) -> None:
    top = sorted(p.name for p in built.iterdir())
    assert top == ["functions", "main.py", "requirements.txt", "shared"]
    assert not {"ops", "deploy", "devstack", "tests"} & set(top)  # never uploaded
    assert not list(built.rglob("__pycache__"))
    assert (built / "requirements.txt").read_text() == (ROOT / "requirements.txt").read_text()
    for spec in FUNCTIONS:
        assert f"    {spec.entry_point}," in (built / "main.py").read_text()


def test_imports_cleanly_on_its_own(built: Path) -> None:
    names = sorted({spec.entry_point for spec in FUNCTIONS})
    result = probe(built, names)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["entry_points"] == dict.fromkeys(names, True)
    site = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    for file in report["files"]:
        inside_repo = file.startswith(str(ROOT) + "/")
        from_site = any(file.startswith(s + "/") for s in site)
        assert not inside_repo or from_site, f"{file} was imported from the dev tree"
    loaded_ours = [f for f in report["files"] if f.startswith(str(built) + "/")]
    assert any(f.endswith("functions/main.py") for f in loaded_ours)
    for tree in ("tests", "ops", "deploy", "devstack"):
        inside = str(ROOT / tree) + "/"
        assert not any(f.startswith(inside) for f in report["files"]), f"{tree}/ was imported"


def test_missing_package_is_detected(built: Path, tmp_path: Path) -> None:
    """The probe is not vacuous: source without `shared/` fails to import."""
    broken = tmp_path / "broken"
    package.build(broken)
    for path in sorted((broken / "shared").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (broken / "shared").rmdir()
    result = probe(broken, ["on_usage_event"])
    assert result.returncode != 0
    assert "shared" in result.stderr


def test_dev_only_dependencies_are_hidden() -> None:
    """The dev venv has yaml, pytest, typer...; the deployed function has requirements.txt only."""
    hidden = set(dev_only_modules())
    assert {"yaml", "pytest", "typer", "rich", "matplotlib", "hypothesis", "mypy"} <= hidden
    assert not {"functions_framework", "google", "pydantic", "grpc", "cloudevents"} & hidden


def test_dev_only_import_is_detected(tmp_path: Path) -> None:
    """The probe is not vacuous: a module-level import of a dev-only package fails it."""
    broken = package.build(tmp_path / "devdep")
    init = broken / "shared" / "__init__.py"
    init.write_text(init.read_text() + "\nimport yaml  # a dev-only dependency\n")
    assert probe(broken, ["on_usage_event"], hidden=[]).returncode == 0, "yaml is installed here"
    result = probe(broken, ["on_usage_event"])
    assert result.returncode != 0
    assert "yaml" in result.stderr
    assert "dev-only" in result.stderr


def test_refuses_to_overwrite_the_repo() -> None:
    with pytest.raises(ValueError, match="refusing"):
        package.build(ROOT / "shared")
    with pytest.raises(ValueError, match="refusing"):
        package.build(ROOT)
