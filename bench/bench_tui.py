"""TUI responsiveness on big graphs, measured with Textual's pilot (a headless terminal).

    .venv/bin/python bench/bench_tui.py [--nodes 50000] [--presses 200]

The graph: the transformer block's golden export graph tiled into a chain (each copy in its
own scope, as in bench_diff.py). "open" is from creating the app to its first painted screen
(the IR already loaded; loading the JSON is timed apart). A key press is answered when the
screen has been repainted after it: the time from the app receiving the key event to the end
of the first compositor refresh after graphscope's handlers for it (the table's rows, the
node's panes) have run (measured inside the app, so the
pilot's own waiting — about 90 ms per press, the same on a 14-node graph — is not counted).
Keys: move down, follow an edge (→ then Enter: two presses, timed to the second paint), type
one search letter, clear the search.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_diff import tiled
from textual import events
from textual.screen import Screen

from graphscope import ir
from graphscope.tui.app import GraphscopeApp

_painted: list[float] = []
_original_refresh = Screen._compositor_refresh


def _timed_refresh(self: Screen) -> None:  # type: ignore[type-arg]
    _original_refresh(self)
    _painted.append(time.perf_counter())


Screen._compositor_refresh = _timed_refresh  # type: ignore[method-assign]


class TimedApp(GraphscopeApp):
    """Notes when each key event arrives and when graphscope's handlers for it finished; the
    first repaint after that ends the measurement."""

    key_at: float = 0.0
    handled_at: float = 0.0

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self.key_at = self.handled_at = time.perf_counter()
        await super().on_event(event)

    def _refresh_rows(self, keep: str | None = None, *, level_changed: bool = False) -> None:
        super()._refresh_rows(keep, level_changed=level_changed)
        self.handled_at = time.perf_counter()

    def _show_node(self, row: object) -> None:
        super()._show_node(row)  # type: ignore[arg-type]
        self.handled_at = time.perf_counter()


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


async def measure(graph: ir.Graph, presses: int) -> dict[str, float | list[float]]:
    start = time.perf_counter()
    app = TimedApp(graph)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        opened = (_painted[0] if _painted else time.perf_counter()) - start

        async def answered(*keys: str) -> float:
            await pilot.press(*keys)
            await pilot.pause()
            after = [p for p in _painted if p >= app.handled_at]
            return (after[0] if after else time.perf_counter()) - app.key_at

        timings: dict[str, list[float]] = {
            "down": [],
            "follow edge": [],
            "search letter": [],
            "clear search": [],
        }
        for i in range(presses):
            timings["down"].append(await answered("down"))
            if i % 10 == 0:
                await pilot.press("right")
                timings["follow edge"].append(await answered("enter"))
            if i % 20 == 0:
                await pilot.press("slash")
                timings["search letter"].append(await answered("l"))
                await pilot.press("escape")
                timings["clear search"].append(await answered("escape"))
    return {"open": opened, **timings}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=50_000)
    parser.add_argument("--presses", type=int, default=200)
    args = parser.parse_args()
    block = ir.load(ROOT / "tests" / "golden" / "torch" / "transformer_block.export.json")
    graph = tiled(block, max(1, args.nodes // (len(block) - 2)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.json"
        ir.save(graph, path)
        t = time.perf_counter()
        graph = ir.load(path)
        load = time.perf_counter() - t
    result = asyncio.run(measure(graph, args.presses))
    print(f"graph: {len(graph)} nodes, {graph.number_of_edges()} edges; ir.load of its JSON: {load:.2f} s")
    print()
    print("| what | median (ms) | p95 (ms) | n |")
    print("|---|---:|---:|---:|")
    print(f"| open to first paint | {1000 * float(result['open']):.0f} | | 1 |")  # type: ignore[arg-type]
    for key in ("down", "follow edge", "search letter", "clear search"):
        values = result[key]
        assert isinstance(values, list)
        print(
            f"| {key} | {1000 * statistics.median(values):.1f} | {1000 * p95(values):.1f} | {len(values)} |"
        )


if __name__ == "__main__":
    main()
