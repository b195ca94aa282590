"""Local development stack: emulator harness and the local suite."""
