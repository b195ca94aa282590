"""Local development stack: the emulator harness and the local suite (`python -m devstack`)."""
