"""Progress on stderr for the CLI's long phases (capturing, stepping, diffing, layout, loading).

A transient rich spinner, shown only when stderr is a terminal, only once the phase has run for
``DELAY`` seconds (quick commands never flash one), and erased when the phase ends, so it leaves
nothing in a scrollback, a pipe, a CI log or ``--json`` output; stdout is never touched.

    with progress.task("capturing with export"):
        graph = tracers.capture_target(found)

    with progress.task("stepping", total=2) as t:
        ...; t.advance()

``set_quiet(True)`` (the CLI's ``--quiet``) turns every task into a no-op.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["DELAY", "Task", "enabled", "set_quiet", "task"]

DELAY = 1.0  # seconds a phase runs before its spinner appears (GRAPHSCOPE_PROGRESS_DELAY overrides)

_quiet = False


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def enabled(stream: IO[str] | None = None) -> bool:
    """Whether progress may be drawn on ``stream`` (stderr): not quiet, a real terminal."""
    stream = stream if stream is not None else sys.stderr
    if _quiet or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or fake stream
        return False


def _delay() -> float:
    try:
        return float(os.environ.get("GRAPHSCOPE_PROGRESS_DELAY", DELAY))
    except ValueError:
        return DELAY


class Task:
    """One phase. ``advance()`` / ``update()`` are cheap and safe whether or not it is drawn."""

    def __init__(self, description: str, total: float | None, stream: IO[str] | None) -> None:
        self.description = description
        self.total = total
        self.completed = 0.0
        self._since = time.monotonic()
        self._stream = stream  # None: never drawn
        self._lock = threading.Lock()
        self._closed = False
        self._progress: Progress | None = None
        self._task_id: TaskID | None = None
        self._timer: threading.Timer | None = None
        if stream is None:
            return
        delay = _delay()
        if delay <= 0:
            self._show()  # at once, on this thread (deterministic for tests and the impatient)
        else:
            self._timer = threading.Timer(delay, self._show)
            self._timer.daemon = True
            self._timer.start()

    def advance(self, amount: float = 1) -> None:
        with self._lock:
            self.completed += amount
            self._refresh()

    def update(self, description: str) -> None:
        with self._lock:
            self.description = description
            self._refresh()

    @property
    def shown(self) -> bool:
        return self._progress is not None

    def _refresh(self) -> None:  # lock held
        if self._progress is not None and self._task_id is not None:
            self._progress.update(self._task_id, description=self.description, completed=self.completed)

    def _show(self) -> None:  # on the timer's thread
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

        with self._lock:
            if self._closed:
                return
            # The console is bound to the stream seen when the phase began: a capture that
            # redirects sys.stderr meanwhile (to hold the framework's chatter) gets no spinner.
            console = Console(file=self._stream, stderr=True)
            columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
            if self.total is not None:
                columns += [BarColumn(), MofNCompleteColumn()]
            columns.append(_elapsed_column(self._since))
            # No redirection of sys.stdout / sys.stderr: stdout must stay the command's own.
            self._progress = Progress(
                *columns, console=console, transient=True, redirect_stdout=False, redirect_stderr=False
            )
            self._task_id = self._progress.add_task(
                self.description, total=self.total, completed=int(self.completed)
            )
            self._progress.start()

    def _close(self) -> None:
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            if self._progress is not None:
                self._progress.stop()


def _elapsed_column(since: float) -> Any:
    """A column with the seconds since the phase began (not since the spinner appeared)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Elapsed(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(f"{time.monotonic() - since:.0f} s", style="progress.elapsed")

    return Elapsed()


@contextmanager
def task(description: str, *, total: float | None = None) -> Iterator[Task]:
    """Run a phase under a spinner (a bar when ``total`` is known) that appears after ``DELAY``."""
    stream = sys.stderr if enabled() else None
    t = Task(description, total, stream)
    try:
        yield t
    finally:
        t._close()
