"""The `blueprint` parser and `main`: run one command, turn every failure into one line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, TextIO

from ops.cli import config, migrate, quota, seed, usage
from ops.cli.common import (
    EXIT_FAILED,
    PROG,
    ClientFactory,
    CliError,
    Parser,
    firestore_client,
    one_line,
)
from shared.errors import BlueprintError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = Parser(prog=PROG, description="BlueprintPipeline operators' tools.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in (migrate, usage, quota, seed, config):
        command.add_parser(sub)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    client_factory: ClientFactory | None = None,
    out: TextIO | None = None,
) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 failed, 2 bad usage)."""
    out = out or sys.stdout
    err = sys.stderr
    try:
        args = build_parser().parse_args(argv)
        from shared.settings import get_settings  # noqa: PLC0415

        get_settings()  # a bad environment fails here, naming the variable
        func: Callable[[argparse.Namespace, ClientFactory, TextIO], int] = args.func
        return func(args, client_factory or firestore_client, out)
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=err)
        return exc.code
    except BlueprintError as exc:
        print(f"{PROG}: error: {one_line(exc)}", file=err)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=err)
        return 130
    except Exception as exc:
        return _external_error(exc, err)


def _external_error(exc: Exception, err: TextIO) -> int:
    from google.api_core import exceptions as gexc  # noqa: PLC0415
    from google.auth import exceptions as auth_exc  # noqa: PLC0415

    if isinstance(exc, gexc.GoogleAPICallError | gexc.RetryError):
        print(
            f"{PROG}: error: Firestore request failed ({type(exc).__name__}): {one_line(exc)}",
            file=err,
        )
        return EXIT_FAILED
    if isinstance(exc, auth_exc.DefaultCredentialsError):
        print(
            f"{PROG}: error: no Google credentials: set FIRESTORE_EMULATOR_HOST for the emulator, "
            "or log in with `gcloud auth application-default login`",
            file=err,
        )
        return EXIT_FAILED
    if isinstance(exc, OSError):
        print(f"{PROG}: error: {one_line(exc)}", file=err)
        return EXIT_FAILED
    raise exc


def entry() -> NoReturn:
    """Console script entry point: logs as readable lines on stderr, results on stdout."""
    from shared import logs  # noqa: PLC0415

    logs.configure("text", level=logging.WARNING)
    for handler in logs.get_logger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)
    sys.exit(main())
