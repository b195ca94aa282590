"""`python -m ops.cli`."""

from ops.cli import entry

entry()
