"""Capture + normalize time of graphscope's TensorFlow tracers against the bare TensorFlow call.

    .venv/bin/python bench/bench_capture_tf.py [--repeat 3]

Bare calls, on keras.applications.ResNet50(weights=None) at 1x224x224x3: tf-function =
`tf.function(model).get_concrete_function(spec)` + `.graph.as_graph_def()`; onnx =
`tf2onnx.convert.from_function`. Each call starts from a fresh tf.function, so every run
traces (the first-call cost users see). Median of --repeat runs after one warm-up.

The onnx row runs every conversion in a fresh process (`--one`), once each: tf2onnx peaks at
7.5 GB on ResNet50 and does not give it all back, so a few conversions in one process exhaust
24 GiB.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras
import numpy as np
import tensorflow as tf
import tf2onnx
from _timing import timed

from graphscope import tracers


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--methods", default="tf-function,onnx", help="comma-separated: tf-function, onnx")
    parser.add_argument("--one", choices=["bare-onnx", "ours-onnx"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    # Initialise TensorFlow's eager context up front, as graphscope's capture does (reading
    # tf.config): tf2onnx runs 20% faster with it initialised, which is not graphscope's doing.
    tf.config.get_soft_device_placement()
    model = keras.applications.ResNet50(weights=None)
    x = np.zeros((1, 224, 224, 3), np.float32)
    spec = tf.TensorSpec(x.shape, tf.float32)

    def bare_function() -> Any:
        return tf.function(model).get_concrete_function(spec).graph.as_graph_def()

    def bare_onnx() -> Any:
        return tf2onnx.convert.from_function(tf.function(model), input_signature=[spec], opset=17)

    if args.one:
        fn = (
            bare_onnx
            if args.one == "bare-onnx"
            else (lambda: tracers.capture(model, (x,), fw="tf", method="onnx"))
        )
        start = time.perf_counter()
        result = fn()
        print(f"{time.perf_counter() - start:.3f} {len(result) if args.one == 'ours-onnx' else 0}")
        return
    rows = [
        ("tf-function", bare_function, lambda: tracers.capture(model, (x,), fw="tf", method="tf-function")),
    ]
    print(
        f"tensorflow {tf.__version__}, keras {keras.__version__}, tf2onnx {tf2onnx.__version__}; median of {args.repeat}"
    )
    print("| model | method | bare call (s) | graphscope (s) | ratio | IR nodes |")
    print("|---|---|---:|---:|---:|---:|")
    wanted = {m.strip() for m in args.methods.split(",")}
    for method, bare, ours in rows:
        if method.split()[0] not in wanted:
            continue
        t_bare = timed(bare, args.repeat)
        t_ours = timed(ours, args.repeat)
        n = len(ours())
        print(
            f"| ResNet50 | {method} | {t_bare:.2f} | {t_ours:.2f} | {t_ours / t_bare:.2f}x | {n} |",
            flush=True,
        )
    if "onnx" in wanted:
        bare_t, ours_t, nodes = [], [], 0
        for _ in range(args.repeat):
            bare_t.append(_isolated("bare-onnx")[0])
            t, nodes = _isolated("ours-onnx")
            ours_t.append(t)
        b, o = statistics.median(bare_t), statistics.median(ours_t)
        print(
            f"| ResNet50 | onnx (tf2onnx), fresh process each | {b:.2f} | {o:.2f} | {o / b:.2f}x | {nodes} |",
            flush=True,
        )


def _isolated(which: str) -> tuple[float, int]:
    import subprocess

    out = subprocess.run(
        [sys.executable, __file__, "--one", which], capture_output=True, text=True, check=True
    )
    seconds, nodes = out.stdout.strip().splitlines()[-1].split()
    return float(seconds), int(nodes)


if __name__ == "__main__":
    main()
