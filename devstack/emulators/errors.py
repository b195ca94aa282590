"""What the emulator harness raises."""

from __future__ import annotations

from shared.errors import BlueprintError


class EmulatorError(BlueprintError):
    """An emulator could not be started, did not answer, or misbehaved."""


class EmulatorsMissingError(EmulatorError):
    """The emulators or Java are not installed; the message says what to install."""
