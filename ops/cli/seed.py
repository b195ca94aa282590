"""`blueprint seed-demo`: load schema.md's example documents (the work is in `ops.seed`)."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from ops.cli.common import ClientFactory


def add_parser(sub: Any) -> None:
    """The `seed-demo` subcommand."""
    seed = sub.add_parser("seed-demo", help="load schema.md's example documents")
    seed.add_argument("--dry-run", action="store_true", help="show what would be written")
    seed.set_defaults(func=cmd_seed_demo)


def cmd_seed_demo(args: argparse.Namespace, client_factory: ClientFactory, out: TextIO) -> int:
    """Load schema.md's example documents."""
    from ops.seed import seed_demo  # noqa: PLC0415

    result = seed_demo(client_factory(), dry_run=args.dry_run)
    print(("dry run: " if args.dry_run else "") + result, file=out)
    return 0
