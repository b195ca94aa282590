"""`blueprint console [--port N] [--host H]`: serve the read-only billing console."""

from __future__ import annotations

from typing import Annotated

import typer

from ops.cli.common import run_of


def register(app: typer.Typer) -> None:
    """The `console` command."""
    app.command("console", help="Serve the read-only billing console (docs/console.md).")(console)


def console(
    ctx: typer.Context,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="port to listen on")] = 8080,
    host: Annotated[
        str, typer.Option("--host", help="address to bind (127.0.0.1: this machine only)")
    ] = "127.0.0.1",
) -> None:
    """Serve the console until Ctrl-C; Firestore is checked at once, then on every page."""
    from ops.console.app import create_app, serve  # noqa: PLC0415 - flask only for this command

    run = run_of(ctx)
    client = run.client_factory()  # fails now, with one line, when Firestore does not answer
    typer.echo(f"billing console on http://{host}:{port}/ (Ctrl-C stops it)", err=True)
    serve(port, host, create_app(lambda: client))
