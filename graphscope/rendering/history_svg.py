"""`graphscope watch --svg`: the loss and the global gradient norm per training step, as an SVG.

Written by hand, no plotting library and no Graphviz: two small line charts, one above the
other, sharing the step axis. A chart is on a log scale when every finite value in it is above
zero (a loss that grows to 1e35 is a straight line there), else on a linear one. A step whose
value is NaN or infinite is a red cross at the top of its chart, and the first step that made
any non-finite value (loss, gradient or updated parameter) is a red dashed line across both.

Input is ``watch``'s history, framework-neutral: a list of ``{"step", "loss", "grad_norm",
"nonfinite"}`` dicts, where a non-finite number is a string ("inf", "nan") since JSON has none.
The output is deterministic: the same history always draws the same bytes (golden-tested).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from graphscope.ir import write_atomic
from graphscope.stepping.watching import read_number

__all__ = ["history_svg", "render"]

WIDTH = 720
PANEL_HEIGHT = 190
HEADROOM = 20  # above the scale, where the crosses of NaN/Inf steps go (never on the line)
SCALE_HEIGHT = PANEL_HEIGHT - HEADROOM
LEFT, RIGHT, TOP, GAP, BOTTOM = 78, 24, 72, 46, 44
FONT = "Helvetica, Arial, sans-serif"
LINE_COLOR = {"loss": "#1c7ed6", "grad_norm": "#7048e8"}
BAD_COLOR = "#e03131"
GRID_COLOR = "#e9ecef"
AXIS_COLOR = "#868e96"
TEXT_COLOR = "#343a40"

# (history key, the chart's title)
PANELS = (("loss", "loss"), ("grad_norm", "global gradient norm"))


def _num(x: float) -> str:
    """Coordinates with two decimals at most, trailing zeros dropped (stable text)."""
    text = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _label(value: float) -> str:
    """A tick label: ``0.001``, ``1``, ``1000``, ``1e+06``, ``2.5``."""
    return f"{value:.4g}"


def _nice_step(span: float, count: int) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about ``count`` ticks over ``span``."""
    raw = span / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 5, 10):
        if raw <= mult * power:
            return mult * power
    return 10 * power


# Tick mantissas on a log scale spanning under two decades (over two: one tick per decade).
_LOG_TICKS = {1: (1.0, 2.0, 5.0), 0: (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0)}


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Values of the form m * 10**k (m from _LOG_TICKS) for a span of ``lo``..``hi`` (log10)."""
    mantissas = _LOG_TICKS[0 if hi - lo < 1 else 1]
    return [m * 10.0**k for k in range(math.floor(lo) - 1, math.ceil(hi) + 1) for m in mantissas]


class _Scale:
    """Maps a panel's finite values to its height: log10 when all are above 0, else linear."""

    def __init__(self, values: list[float]) -> None:
        self.log = bool(values) and min(values) > 0
        if not values:
            lo, hi = 0.0, 1.0
        elif self.log:
            lo, hi = math.log10(min(values)), math.log10(max(values))
        else:
            lo, hi = min(values), max(values)
        if hi - lo < 1e-12:  # one value, or all equal: a band around it
            lo, hi = (lo - 1, hi + 1) if self.log else (lo - max(abs(lo), 1) / 2, hi + max(abs(hi), 1) / 2)
        self.minor: list[float] = []  # a short log span: ticks at 1, 2, 5 (or finer) times 10**k
        if self.log and hi - lo < 2:
            ticks = _log_ticks(lo, hi)
            below = [t for t in ticks if math.log10(t) <= lo + 1e-12]
            above = [t for t in ticks if math.log10(t) >= hi - 1e-12]
            lo, hi = math.log10(below[-1]), math.log10(above[0])
            self.minor = [t for t in ticks if lo - 1e-12 <= math.log10(t) <= hi + 1e-12]
        elif self.log:  # whole decades at both ends
            lo, hi = math.floor(lo), math.ceil(hi)
        else:
            step = _nice_step(hi - lo, 4)
            lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
        self.lo, self.hi = lo, hi

    def fraction(self, value: float) -> float:
        """0 at the bottom of the chart, 1 at the top."""
        x = math.log10(value) if self.log else value
        return (x - self.lo) / (self.hi - self.lo)

    def ticks(self) -> list[tuple[float, str]]:
        """(fraction, label) for each tick: every decade on a log scale (fewer when many)."""
        if self.minor:
            return [(self.fraction(t), _label(t)) for t in self.minor]
        if self.log:
            decades = int(self.hi - self.lo)
            every = max(1, math.ceil(decades / 6))
            return [
                ((k - self.lo) / (self.hi - self.lo), _label(10.0**k))
                for k in range(int(self.lo), int(self.hi) + 1, every)
            ]
        step = _nice_step(self.hi - self.lo, 4)
        out = []
        k = 0
        while (v := self.lo + k * step) <= self.hi + step / 1e6:
            out.append(((v - self.lo) / (self.hi - self.lo), _label(round(v, 12))))
            k += 1
        return out


def _step_ticks(first: int, last: int) -> list[int]:
    if last <= first:
        return [first]
    step = max(1, int(_nice_step(last - first, 6)))
    ticks = [first] + [s for s in range((first // step + 1) * step, last + 1, step) if s != first]
    if last - ticks[-1] >= step / 2:  # the last step labelled, unless a tick is close to it
        ticks.append(last)
    return ticks


def history_svg(
    history: Sequence[dict[str, Any]], *, first_nonfinite_step: int | None = None, title: str = "watch"
) -> str:
    """The SVG text: loss and global gradient norm per step, the first non-finite step marked."""
    steps = [int(row.get("step", i + 1)) for i, row in enumerate(history)]
    first, last = (min(steps), max(steps)) if steps else (1, 1)
    plot_w = WIDTH - LEFT - RIGHT
    height = TOP + len(PANELS) * PANEL_HEIGHT + (len(PANELS) - 1) * GAP + BOTTOM

    def x_of(step: int) -> float:
        if last == first:
            return LEFT + plot_w / 2
        return LEFT + (step - first) / (last - first) * plot_w

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="{FONT}" font-size="11" fill="{TEXT_COLOR}">',
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
    ]
    summary = f"{len(history)} training step{'s' if len(history) != 1 else ''}"
    if first_nonfinite_step is not None:
        summary += f" · first non-finite value at step {first_nonfinite_step}"
    else:
        summary += " · no NaN or Inf"
    out.append(f'<text x="{LEFT}" y="22" font-size="14" font-weight="bold">{escape(title)}</text>')
    out.append(f'<text x="{LEFT}" y="38" fill="{AXIS_COLOR}">{escape(summary)}</text>')
    bottom_of_last = TOP
    for p, (key, name) in enumerate(PANELS):
        top = TOP + p * (PANEL_HEIGHT + GAP)
        bottom = top + PANEL_HEIGHT
        bottom_of_last = bottom
        values = [read_number(row.get(key)) for row in history]
        finite = [v for v in values if v is not None and math.isfinite(v)]
        scale = _Scale(finite)
        out.append(
            f'<text x="{LEFT}" y="{top - 8}" font-weight="bold">{escape(name)}'
            f'<tspan dx="6" font-weight="normal" fill="{AXIS_COLOR}">'
            f"{'log scale' if scale.log else ''}</tspan></text>"
        )
        out.append(
            f'<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{PANEL_HEIGHT}" '
            f'fill="none" stroke="{AXIS_COLOR}"/>'
        )
        for frac, label in scale.ticks():
            y = bottom - frac * SCALE_HEIGHT
            out.append(
                f'<line x1="{LEFT}" y1="{_num(y)}" x2="{LEFT + plot_w}" y2="{_num(y)}" stroke="{GRID_COLOR}"/>'
            )
            out.append(f'<text x="{LEFT - 6}" y="{_num(y + 4)}" text-anchor="end">{escape(label)}</text>')
        for s in _step_ticks(first, last):
            x = x_of(s)
            out.append(
                f'<line x1="{_num(x)}" y1="{bottom}" x2="{_num(x)}" y2="{bottom + 4}" stroke="{AXIS_COLOR}"/>'
            )
            out.append(f'<text x="{_num(x)}" y="{bottom + 16}" text-anchor="middle">{s}</text>')
        # The line is broken where a value is missing or non-finite: no segment into a cross.
        runs: list[list[str]] = [[]]
        for s, v in zip(steps, values, strict=True):
            if v is None or not math.isfinite(v):
                runs.append([])
                continue
            y = bottom - scale.fraction(v) * SCALE_HEIGHT
            runs[-1].append(f"{_num(x_of(s))},{_num(y)}")
        color = LINE_COLOR[key]
        for run in runs:
            if len(run) > 1:
                out.append(
                    f'<polyline points="{" ".join(run)}" fill="none" stroke="{color}" stroke-width="1.5"/>'
                )
            if len(run) == 1 or len(steps) <= 60:  # points too, while there is room for them
                for point in run:
                    px, py = point.split(",")
                    out.append(f'<circle cx="{px}" cy="{py}" r="2" fill="{color}"/>')
        labelled = ""  # the word written at the start of the current run of non-finite values
        for s, v in zip(steps, values, strict=True):
            if v is None or math.isfinite(v):
                labelled = ""
                continue
            x, y = x_of(s), top + 10
            out.append(
                f'<path d="M{_num(x - 4)},{_num(y - 4)} L{_num(x + 4)},{_num(y + 4)} '
                f'M{_num(x - 4)},{_num(y + 4)} L{_num(x + 4)},{_num(y - 4)}" '
                f'stroke="{BAD_COLOR}" stroke-width="2"/>'
            )
            word = "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
            if word == labelled:
                continue
            labelled = word
            out.append(
                f'<text x="{_num(x - 7)}" y="{_num(y + 4)}" text-anchor="end" fill="{BAD_COLOR}">{word}</text>'
            )
        if not finite:
            out.append(
                f'<text x="{_num(LEFT + plot_w / 2)}" y="{_num(top + PANEL_HEIGHT / 2)}" '
                f'text-anchor="middle" fill="{AXIS_COLOR}">no finite value</text>'
            )
    if first_nonfinite_step is not None:
        x = x_of(first_nonfinite_step)
        out.append(
            f'<line x1="{_num(x)}" y1="{TOP}" x2="{_num(x)}" y2="{bottom_of_last}" stroke="{BAD_COLOR}" '
            'stroke-width="1.5" stroke-dasharray="5,4"/>'
        )
        anchor = "end" if x > LEFT + plot_w * 0.6 else "start"
        dx = -6 if anchor == "end" else 6
        out.append(
            f'<text x="{_num(x + dx)}" y="{TOP + PANEL_HEIGHT - 8}" text-anchor="{anchor}" '
            f'fill="{BAD_COLOR}" font-weight="bold">step {first_nonfinite_step}: first non-finite</text>'
        )
    out.append(
        f'<text x="{_num(LEFT + plot_w / 2)}" y="{height - 8}" text-anchor="middle" '
        f'fill="{AXIS_COLOR}">training step</text>'
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def render(
    history: Sequence[dict[str, Any]],
    output: str | os.PathLike[str],
    *,
    first_nonfinite_step: int | None = None,
    title: str = "watch",
) -> Path:
    """Write :func:`history_svg` to ``output`` (atomically)."""
    return write_atomic(output, history_svg(history, first_nonfinite_step=first_nonfinite_step, title=title))
