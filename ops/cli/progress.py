"""Progress bars of long commands (migrate, quota reset): rich, on stderr, terminals only."""

from __future__ import annotations

from types import TracebackType
from typing import Any


def stderr_is_terminal() -> bool:
    """Whether stderr is a terminal (rich's own test: TTY_COMPATIBLE / FORCE_COLOR, isatty)."""
    from rich.console import Console  # noqa: PLC0415

    return Console(stderr=True).is_terminal


class Bar:
    """A counted progress bar on stderr, or nothing at all when `enabled` is false.

    Stdout stays clean for the command's result (and `--json`): the bar never writes there, and
    a pipe or a log file (not a terminal) gets no bar and no control codes.
    """

    def __init__(self, description: str, total: int | None, unit: str, enabled: bool) -> None:
        self.n = 0
        self._progress: Any = None
        self._task: Any = None
        if not enabled:
            return
        from rich.console import Console  # noqa: PLC0415
        from rich.progress import (  # noqa: PLC0415
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(unit),
            TimeElapsedColumn(),
            TextColumn("{task.fields[note]}"),
            console=Console(stderr=True, force_terminal=True),
            transient=False,
            # No swapping of sys.stdout/sys.stderr while the bar runs: a log handler created
            # meanwhile would keep the swapped-in proxy after the bar is gone.
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = self._progress.add_task(description, total=total, note="")
        self._progress.start()

    def update(self, advance: int) -> None:
        """`advance` more items done."""
        self.n += advance
        if self._progress is not None:
            self._progress.update(self._task, completed=self.n)

    def note(self, **counts: Any) -> None:
        """Running counts shown after the bar (`reset=3 skipped=1`)."""
        if self._progress is not None:
            text = " ".join(f"{k}={v}" for k, v in counts.items())
            self._progress.update(self._task, note=text)

    def close(self) -> None:
        """Draw the final state and give the terminal back."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> Bar:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def bar(description: str, total: int | None, unit: str, *, no_progress: bool) -> Bar:
    """A bar on a terminal unless `--no-progress`; nothing otherwise."""
    return Bar(description, total, unit, enabled=not no_progress and stderr_is_terminal())
