"""`blueprint` (or `python -m ops.cli`): the operators' command line, one module per command.

    blueprint migrate EXPORT... [--skip-invalid] [--dry-run] [--batch-size N] [--no-progress]
    blueprint usage report --customer ID --month YYYY-MM [--csv | --json] [--chart FILE.png]
    blueprint quota reset (--dry-run | --yes) [--month YYYY-MM] [--no-progress] [--json]
    blueprint seed-demo [--dry-run] [--json]
    blueprint config customer ID | config scene ID [--customer ID]   [--json]

Built on typer (parsing, help) and rich (tables, progress bars on stderr).

A user mistake (bad argument, unreadable export, Firestore unreachable) prints one line on
stderr and exits non-zero: 2 for bad usage, 1 for everything else. Never a traceback.
See docs/cli.md.
"""

from ops.cli.app import build_app, entry, main
from ops.cli.common import CliError

__all__ = ["CliError", "build_app", "entry", "main"]
