"""Local development stack: emulator harness, local suite, functions host (`python -m devstack`)."""
