"""What the tests of the real `blueprint` CLI share: a run that captures both streams, the
seeded emulator and a fresh log handler per test.

The fixtures reach every integration test through `tests/integration/conftest.py`; a CLI test
module asks for the log handler with `pytestmark = pytest.mark.usefixtures("cli_logs")`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import pytest

from devstack.emulators import Emulators
from ops.cli import main
from shared import logs


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`blueprint argv`: the exit code, stdout and stderr."""
    out = io.StringIO()
    code = main(argv, out=out)
    return code, out.getvalue(), capsys.readouterr().err


@pytest.fixture
def cli_logs() -> Iterator[None]:
    """The suite's log handler binds sys.stdout when first used: pytest's capture of this test
    is closed afterwards, so the next test gets a handler of its own."""
    yield
    logs.get_logger().handlers.clear()


@pytest.fixture
def seeded(clean_firestore: Emulators, capsys: pytest.CaptureFixture[str]) -> Emulators:
    """The emulator, emptied, then loaded with `blueprint seed-demo`."""
    assert run(["seed-demo"], capsys)[0] == 0
    return clean_firestore


Case = tuple[list[str], int, str]
"""`(argv, exit code, what the one error line says)`."""


def exit_code_test(cases: list[Case]) -> Callable[..., None]:
    """A test of `cases` on the seeded emulator, one per case: each exits with its code and
    says what it says on one stderr line (`test_exit_codes = exit_code_test(CASES)`)."""

    @pytest.mark.parametrize(("argv", "code", "says"), cases, ids=[" ".join(c[0]) for c in cases])
    def test_exit_codes(
        seeded: Emulators,
        capsys: pytest.CaptureFixture[str],
        argv: list[str],
        code: int,
        says: str,
    ) -> None:
        got, _, err = run(argv, capsys)
        assert got == code, err
        assert len(err.strip().splitlines()) == 1, err
        assert says in err

    return test_exit_codes
