"""A training step in the TUI: the strip of phases the step walks through (forward, backward,
optimizer) with the current step on it, and the sparklines of a ``watch`` run's history.

Both are drawn from framework-neutral data: the records' nodes' ``phase`` and the history's
``loss`` / ``grad_norm`` numbers (a non-finite one written as "inf" or "nan"), so a TensorFlow
run shows the same way as a PyTorch one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.text import Text
from textual.widgets import Static

from graphscope.rendering.steps import format_number
from graphscope.stepping.watching import read_number

if TYPE_CHECKING:
    from rich.console import RenderableType

    from graphscope.stepping.records import Steps

__all__ = ["HistoryPane", "PhaseStrip", "bad_counts", "phase_runs", "phase_strip", "phases_of", "sparkline"]

PHASES = ("forward", "backward", "optimizer")
PHASE_STYLES = {"forward": "cyan", "backward": "magenta", "optimizer": "green"}
BARS = "▁▂▃▄▅▆▇█"
BAD = "✗"


def phases_of(steps: Steps) -> list[str]:
    """Each record's phase (``forward`` where the graph does not say)."""
    graph = steps.graph
    return [(graph.node(r.node).get("phase") or "forward") if r.node in graph else "forward" for r in steps]


def _cells(n: int, width: int) -> list[range]:
    """``n`` records in ``width`` cells at most: the records each cell stands for."""
    width = max(1, min(width, n))
    return [range(i * n // width, (i + 1) * n // width) for i in range(width)]


def bad_counts(steps: Steps) -> list[int]:
    """``[i]``: how many of the first ``i`` records hold a non-finite value that counts (not a
    mask's -inf; a cell of the strip asks in constant time)."""
    counts = [0]
    for r in steps:
        counts.append(counts[-1] + steps.counts(r))
    return counts


def phase_runs(phases: Sequence[str]) -> list[tuple[str, int, int]]:
    """(phase, first record, end) for each run of records in one phase, in run order."""
    runs: list[tuple[str, int, int]] = []
    for i, phase in enumerate(phases):
        if runs and runs[-1][0] == phase:
            runs[-1] = (phase, runs[-1][1], i + 1)
        else:
            runs.append((phase, i, i + 1))
    return runs


def phase_strip(
    steps: Steps,
    position: int,
    width: int,
    *,
    runs: list[tuple[str, int, int]] | None = None,
    bad: Sequence[int] | None = None,
) -> Text:
    """One line: each phase's name and its records as a bar, in the order the framework ran
    them: ``━`` run, ``─`` not run yet, ``▶`` the current step, ``✗`` (red) a non-finite value
    among the records run so far. ``runs`` and ``bad`` (:func:`phase_runs` and
    :func:`bad_counts` of ``steps``) when already known: each key press redraws the strip."""
    runs = phase_runs(phases_of(steps)) if runs is None else runs
    bad = bad_counts(steps) if bad is None else bad
    labels = sum(len(p) + 2 for p, _, _ in runs)
    room = max(len(runs), width - labels)
    line = Text()
    for k, (phase, start, end) in enumerate(runs):
        share = max(1, room * (end - start) // max(1, len(steps)))
        style = PHASE_STYLES.get(phase, "")
        current = start <= position < end
        line.append(phase, style=f"bold {style} reverse" if current else f"bold {style}")
        line.append(" ")
        for cell in _cells(end - start, share):
            records = range(start + cell.start, start + cell.stop)
            if position in records:
                line.append("▶", style="bold reverse")
            elif records.start > position:  # not run yet: its values are not shown either
                line.append("─", style="dim")
            elif bad[records.stop] > bad[records.start]:
                line.append(BAD, style="bold red")
            else:
                line.append("━", style=style)
        if k < len(runs) - 1:
            line.append(" ")
    line.truncate(width, overflow="ellipsis")
    return line


def sparkline(values: Sequence[Any], width: int) -> tuple[Text, bool]:
    """``▁▂▃█`` for ``values`` in ``width`` cells at most (a cell shows the largest of the values
    it stands for, so a spike is never averaged away); a non-finite value is a red ``✗``. On a
    log scale when every finite value is above 0. Returns the line and whether it is log."""
    numbers = [read_number(v) for v in values]
    finite = [v for v in numbers if v is not None and math.isfinite(v)]
    log = bool(finite) and min(finite) > 0

    def scaled(v: float) -> float:
        return math.log10(v) if log else v

    lo = min(map(scaled, finite), default=0.0)
    hi = max(map(scaled, finite), default=0.0)
    line = Text()
    for cell in _cells(len(numbers), width):
        chunk = [numbers[i] for i in cell]
        if any(v is not None and not math.isfinite(v) for v in chunk):
            line.append(BAD, style="bold red")
            continue
        present = [v for v in chunk if v is not None]
        if not present:
            line.append(" ")
            continue
        at = (scaled(max(present)) - lo) / (hi - lo) if hi > lo else 0.5
        line.append(BARS[min(len(BARS) - 1, int(at * len(BARS)))])
    return line, log


class PhaseStrip(Static):
    """Step mode over a training step: where the current step is among forward, backward and
    the optimizer's update."""

    shown: RenderableType = ""  # what it shows (for tests)
    # each record's phase and the non-finite counts, read once per run
    _known: tuple[Steps, list[tuple[str, int, int]], list[int]] | None = None

    def show(self, steps: Steps, position: int) -> None:
        if self._known is None or self._known[0] is not steps:
            self._known = (steps, phase_runs(phases_of(steps)), bad_counts(steps))
        width = max(20, self.content_region.width or 80)
        _, runs, bad = self._known
        self.shown = phase_strip(steps, position, width, runs=runs, bad=bad)
        self.update(self.shown)


class HistoryPane(Static):
    """A ``watch`` run: its loss and gradient norm per step as sparklines, and which step the
    step mode below is (the replay of the first non-finite step, or, in a run without one, a
    step on the example inputs from the model's state before training)."""

    shown: RenderableType = ""  # what it shows (for tests)

    def show(self, history: Sequence[dict[str, Any]], first_nonfinite_step: int | None) -> None:
        width = max(30, self.content_region.width or 80)
        self.shown = history_lines(history, first_nonfinite_step, width)
        self.update(self.shown)


def history_lines(
    history: Sequence[dict[str, Any]], first_nonfinite_step: int | None, width: int
) -> RenderableType:
    n = len(history)
    if first_nonfinite_step is None:
        head = Text(
            f"watch: {n} step{'s' if n != 1 else ''}, no NaN or Inf · below: a step on the example inputs"
        )
    else:
        head = Text(f"watch: {n} step{'s' if n != 1 else ''} · ")
        head.append(f"first non-finite at step {first_nonfinite_step}", style="bold red")
        head.append(", replayed below")
    head.no_wrap = True
    head.truncate(width, overflow="ellipsis")
    lines: list[Text] = [head]
    for key, name in (("loss", "loss     "), ("grad_norm", "grad norm")):
        values = [row.get(key) for row in history]
        ends = f"  {_short(values[0])} → {_short(values[-1])}" if values else ""
        spark, log = sparkline(values, max(8, width - len(name) - 2 - len(ends) - 6))
        line = Text(f"{name} ", style="bold")
        line.append_text(spark)
        line.append(ends + (" (log)" if log else ""), style="dim")
        line.truncate(width, overflow="ellipsis")
        lines.append(line)
    return Group(*lines)


def _short(value: Any) -> str:
    number = read_number(value)
    return str(value) if number is None else format_number(number)
