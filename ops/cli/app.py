"""The `blueprint` typer app and `main`: run one command, turn every failure into one line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import NoReturn, TextIO

import typer

# typer 0.29 vendors click; its exception classes are public there only (pinned version).
from typer._click.exceptions import ClickException, UsageError

from ops import localstack
from ops.cli import (
    config,
    console,
    flags,
    inspect,
    migrate,
    quota,
    seed,
    usage,
    usage_export,
    usage_recount,
    usage_replay,
    usage_send,
    watch,
)
from ops.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    PROG,
    ClientFactory,
    CliError,
    Run,
    firestore_client,
    one_line,
)
from shared.errors import BlueprintError


def build_app() -> typer.Typer:
    """The typer app with every command registered."""
    app = typer.Typer(
        name=PROG,
        help="BlueprintPipeline operators' tools (docs/cli.md).",
        add_completion=False,
        no_args_is_help=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @app.callback()
    def root() -> None:
        """BlueprintPipeline operators' tools (docs/cli.md)."""
        # Before every command: talk to the running local suite when no Google variable is set.
        localstack.use_running_suite()

    for command in (
        migrate,
        usage,
        usage_export,
        usage_replay,
        usage_recount,
        usage_send,
        quota,
        seed,
        config,
        flags,
        inspect,
        console,
        watch,
    ):
        command.register(app)
    return app


def main(  # noqa: PLR0911 - one return per kind of outcome, each with its exit code
    argv: Sequence[str] | None = None,
    *,
    client_factory: ClientFactory | None = None,
    out: TextIO | None = None,
) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 failed, 2 bad usage)."""
    out = out or sys.stdout
    err = sys.stderr
    args = list(sys.argv[1:] if argv is None else argv)
    run = Run(client_factory or firestore_client, out)
    try:
        command = typer.main.get_command(build_app())
        if _wants_help(args):
            # Help is data for a person: on the run's stdout, whatever that is.
            sys_stdout, sys.stdout = sys.stdout, out
            try:
                code = command.main(args, prog_name=PROG, standalone_mode=False, obj=run)
            finally:
                sys.stdout = sys_stdout
            return int(code or 0)
        code = command.main(args, prog_name=PROG, standalone_mode=False, obj=run)
        if code == 130:  # typer turns Ctrl-C into Exit(130)
            print(f"{PROG}: interrupted", file=err)
        return int(code or 0)
    except UsageError as exc:
        print(f"{PROG}: error: {_where(exc)}{one_line_text(exc.format_message())}", file=err)
        return EXIT_USAGE
    except ClickException as exc:
        print(f"{PROG}: error: {one_line_text(exc.format_message())}", file=err)
        return EXIT_FAILED
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=err)
        return exc.code
    except BlueprintError as exc:
        print(f"{PROG}: error: {one_line(exc)}", file=err)
        return EXIT_FAILED
    except (KeyboardInterrupt, typer.Abort):
        print(f"{PROG}: interrupted", file=err)
        return 130
    except Exception as exc:
        return _external_error(exc, err)


def _wants_help(args: list[str]) -> bool:
    return any(a in ("-h", "--help") for a in args)


def _where(exc: UsageError) -> str:
    """`migrate: ` for an error of `blueprint migrate` (the program name is said once)."""
    path = exc.ctx.command_path if exc.ctx is not None else ""
    where = path.removeprefix(PROG).strip()
    return f"{where}: " if where else ""


def one_line_text(text: str) -> str:
    """click's message on one line, pointing at --help."""
    return " ".join(text.split()) + " (see --help)"


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
            f"{PROG}: error: no Google credentials: set FIRESTORE_EMULATOR_HOST for the emulator "
            "(`make emulators` or `make run` print it), or for a real project set "
            "GOOGLE_CLOUD_PROJECT and log in with `gcloud auth application-default login`",
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
