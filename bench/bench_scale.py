"""A saved graph of a million nodes: load, `info` and `render` in bounded time and memory.

    .venv/bin/python bench/bench_scale.py [--sizes 100000,1000000]

Each size is written once as a graphscope .json (NN-shaped: residual blocks of 7 ops and a
weight, 16 blocks a stage, scopes `stageN/block/opK`; see bench_render.synthetic), then each
command runs in its own process, as a user would run it; wall time and the process's peak
RSS are reported. This script itself stays small and imports neither torch nor graphscope:
Linux counts the memory a process had when it was forked into its child's peak RSS.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
GRAPHSCOPE = str(Path(sys.executable).with_name("graphscope"))


def run(args: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB, and the last stderr line of one command."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed: {err.strip()}")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    return wall, usage.ru_maxrss / 1024, lines[0] if lines else ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    print("| nodes | file (MB) | command | wall (s) | peak RSS (MB) | what it said on stderr |")
    print("|---:|---:|---|---:|---:|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        path = tmp / f"g{n}.json"
        build = (
            f"import sys; sys.path[:0] = [{str(BENCH.parent)!r}, {str(BENCH)!r}]; "
            "from bench_render import synthetic; from graphscope import ir; "
            f"ir.save(synthetic({n}), {str(path)!r})"
        )
        subprocess.run([sys.executable, "-c", build], check=True)
        mb = path.stat().st_size / 1e6
        load = [sys.executable, "-c", f"from graphscope import ir; ir.load({str(path)!r})"]
        for label, cmd in (
            ("ir.load", load),
            ("graphscope info", [GRAPHSCOPE, "info", str(path)]),
            ("graphscope render", [GRAPHSCOPE, "render", str(path), "-o", str(tmp / "g.svg")]),
        ):
            wall, rss, said = run(cmd)
            print(f"| {n:,} | {mb:.0f} | `{label}` | {wall:.1f} | {rss:,.0f} | {said} |", flush=True)
        path.unlink()


if __name__ == "__main__":
    main()
