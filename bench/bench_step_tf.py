"""Stepping cost in TensorFlow against a plain call and TF's own numeric debuggers.

    .venv/bin/python bench/bench_step_tf.py [--repeat 3] [--batch 8]

On keras.applications.ResNet50(weights=None) at Nx224x224x3, each tool in a fresh process
(their instrumentation is process-wide, and peak RSS must be each tool's own):

- forward: `tf.function(model)` — its first call (trace + run) and a later call (run only);
- graphscope step: `graphscope.stepping.step(model, inputs, fw="tf")` — every call traces the
  model, builds the summary graph and runs it once, so it compares with a first call;
- dump_debug_info FULL_HEALTH: `tf.debugging.experimental.enable_dump_debug_info(dir,
  tensor_debug_mode="FULL_HEALTH", circular_buffer_size=-1)`, then a fresh tf.function's first
  and later calls (it records a health summary of every tensor to disk);
- check_numerics: `tf.debugging.enable_check_numerics()`, then the same.

Times are medians of --repeat runs after one warm-up (the first-call rows use a fresh
tf.function each time); peak RSS is the process's, "above" is what it added once the model
and the input were built.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOOLS = ["forward", "graphscope step", "dump_debug_info FULL_HEALTH", "check_numerics"]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(tool: str, repeat: int, batch: int) -> dict[str, Any]:
    import keras
    import numpy as np
    import tensorflow as tf

    warnings.simplefilter("ignore")
    model = keras.applications.ResNet50(weights=None)
    x = tf.constant(np.random.default_rng(0).normal(size=(batch, 224, 224, 3)).astype(np.float32))
    base = _rss_mb()
    if tool == "dump_debug_info FULL_HEALTH":
        folder = tempfile.mkdtemp(prefix="tfdbg-")
        tf.debugging.experimental.enable_dump_debug_info(
            folder, tensor_debug_mode="FULL_HEALTH", circular_buffer_size=-1
        )
    elif tool == "check_numerics":
        tf.debugging.enable_check_numerics()

    if tool == "graphscope step":
        from graphscope import stepping

        def first() -> Any:
            return stepping.step(model, (x,), fw="tf")

        later = None
    else:

        def first() -> Any:
            fn = tf.function(model)
            return fn(x)

        fn = tf.function(model)
        fn(x)

        def later() -> Any:
            return fn(x)

    def median(call: Any) -> float:
        call()
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    row = {"first": median(first), "later": median(later) if later else None}
    row["peak_mb"] = _rss_mb()
    row["above_mb"] = row["peak_mb"] - base
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--worker", metavar="TOOL")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.repeat, args.batch)))
        return
    print(f"ResNet50 (keras.applications, weights=None), batch {args.batch}, 224x224x3")
    print()
    print(
        "| tool | first call: trace + run (s) | × forward first | later call (s) | peak RSS (MB) | above model (MB) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    plain: dict[str, Any] = {}
    for tool in TOOLS:
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--repeat",
                str(args.repeat),
                "--batch",
                str(args.batch),
                "--worker",
                tool,
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["?"])[-1]
            print(f"| {tool} | failed: {last[:80]} | | | | |")
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        if tool == "forward":
            plain = row
        ratio = row["first"] / plain["first"] if plain else float("nan")
        later = f"{row['later']:.3f}" if row["later"] is not None else "(traces every call)"
        print(
            f"| {tool} | {row['first']:.3f} | {ratio:.2f} | {later} | {row['peak_mb']:.0f} | {row['above_mb']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
