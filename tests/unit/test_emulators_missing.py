"""Missing emulators or Java give one message that says what to install."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.emulators import EmulatorError, EmulatorsMissingError, find_commands, start_emulators
from shared.settings import load_settings


def _assert_install_hint(message: str) -> None:
    for needed in (
        "google-cloud-cli-firestore-emulator",
        "google-cloud-cli-pubsub-emulator",
        "Java 17",
        "firebase-tools",
        "Java 21",
    ):
        assert needed in message


def test_missing_firestore_command_names_what_to_install() -> None:
    settings = load_settings(
        {"BLUEPRINT_FIRESTORE_EMULATOR_CMD": "/nonexistent/firestore-emu start"}
    )
    with pytest.raises(EmulatorsMissingError) as err:
        find_commands(settings)
    assert "/nonexistent/firestore-emu" in str(err.value)
    _assert_install_hint(str(err.value))


def test_missing_sdk_root_names_both_emulators(tmp_path: Path) -> None:
    settings = load_settings({"BLUEPRINT_SDK_ROOT": str(tmp_path)})
    with pytest.raises(EmulatorsMissingError) as err:
        find_commands(settings)
    assert "Firestore emulator not found" in str(err.value)
    assert "Pub/Sub emulator not found" in str(err.value)
    _assert_install_hint(str(err.value))


def test_missing_java_names_what_to_install(tmp_path: Path) -> None:
    settings = load_settings({"BLUEPRINT_JAVA": str(tmp_path / "no-java")})
    with pytest.raises(EmulatorsMissingError) as err:
        find_commands(settings)
    assert "Java not found" in str(err.value)
    _assert_install_hint(str(err.value))


def test_emulator_that_exits_at_once_reports_its_log(tmp_path: Path) -> None:
    fake = tmp_path / "fake-emulator"
    fake.write_text("#!/bin/sh\necho 'fake emulator: broken install' >&2\nexit 3\n")
    fake.chmod(0o755)
    settings = load_settings(
        {"BLUEPRINT_FIRESTORE_EMULATOR_CMD": str(fake), "BLUEPRINT_PUBSUB_EMULATOR_CMD": str(fake)}
    )
    with pytest.raises(EmulatorError) as err:
        start_emulators("demo-fake", settings=settings, log_dir=tmp_path / "logs", timeout=10)
    assert "exited with status 3" in str(err.value)
    assert str(tmp_path / "logs") in str(err.value)
    assert "broken install" in str(err.value)
