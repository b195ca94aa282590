"""The packaged functions source stands on its own: no path into tests/, devstack/ or the repo."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from devstack import package
from functions.table import FUNCTIONS

ROOT = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter: -I ignores PYTHON* variables, the script's and the current
# directory; sys.path is then the package dir, the standard library and site-packages only.
PROBE = r"""
import json, sys, sysconfig
src = sys.argv[1]
allowed = {sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib"),
           sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
sys.path[:] = [src] + [p for p in sys.path if p in allowed or p.endswith(".zip")
                       or p.endswith("lib-dynload")]
import main
from functions_framework import create_app
entry_points = {}
for name in json.loads(sys.argv[2]):
    fn = getattr(main, name)
    app = create_app(target=name, source=src + "/main.py", signature_type="cloudevent")
    entry_points[name] = callable(fn) and app is not None
files = sorted({getattr(m, "__file__", None) or "" for m in list(sys.modules.values())})
print(json.dumps({"entry_points": entry_points, "files": files, "path": sys.path}))
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return package.build(tmp_path_factory.mktemp("pkg") / "functions-src")


def test_layout(built: Path) -> None:
    top = sorted(p.name for p in built.iterdir())
    assert top == ["functions", "main.py", "requirements.txt", "shared"]
    assert not list(built.rglob("__pycache__"))
    assert (built / "requirements.txt").read_text() == (ROOT / "requirements.txt").read_text()
    for spec in FUNCTIONS:
        assert f"    {spec.entry_point}," in (built / "main.py").read_text()


def test_imports_cleanly_on_its_own(built: Path) -> None:
    names = sorted({spec.entry_point for spec in FUNCTIONS})
    result = subprocess.run(
        [sys.executable, "-I", "-c", PROBE, str(built), json.dumps(names)],
        cwd=built,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
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
    assert not any("/tests/" in f or "/devstack/" in f for f in report["files"])


def test_missing_package_is_detected(built: Path, tmp_path: Path) -> None:
    """The probe is not vacuous: source without `shared/` fails to import."""
    broken = tmp_path / "broken"
    package.build(broken)
    for path in sorted((broken / "shared").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (broken / "shared").rmdir()
    result = subprocess.run(
        [sys.executable, "-I", "-c", PROBE, str(broken), json.dumps(["on_usage_event"])],
        cwd=broken,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "shared" in result.stderr


def test_refuses_to_overwrite_the_repo() -> None:
    with pytest.raises(ValueError, match="refusing"):
        package.build(ROOT / "shared")
    with pytest.raises(ValueError, match="refusing"):
        package.build(ROOT)
