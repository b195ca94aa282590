"""`python -m shared.cli`."""

from shared.cli import entry

entry()
