"""Every test under tests/integration runs on the real emulators and is marked `integration`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_support import cli_logs, seeded  # noqa: F401 - the CLI tests' fixtures

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests of this directory `integration` (deselect with `-m "not integration"`)."""
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)
