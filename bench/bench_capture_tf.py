"""Capture + normalize time of graphscope's TensorFlow tracers against the bare TensorFlow call.

    .venv/bin/python bench/bench_capture_tf.py [--repeat 3]

Bare calls, on keras.applications.ResNet50(weights=None) at 1x224x224x3: tf-function =
`tf.function(model).get_concrete_function(spec)` + `.graph.as_graph_def()`; onnx =
`tf2onnx.convert.from_function`. Each call starts from a fresh tf.function, so every run
traces (the first-call cost users see). Median of --repeat runs after one warm-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras
import numpy as np
import tensorflow as tf
import tf2onnx

from graphscope import tracers


def timed(fn: Callable[[], Any], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    model = keras.applications.ResNet50(weights=None)
    x = np.zeros((1, 224, 224, 3), np.float32)
    spec = tf.TensorSpec(x.shape, tf.float32)

    def bare_function() -> Any:
        return tf.function(model).get_concrete_function(spec).graph.as_graph_def()

    def bare_onnx() -> Any:
        return tf2onnx.convert.from_function(tf.function(model), input_signature=[spec], opset=17)

    rows = [
        ("tf-function", bare_function, lambda: tracers.capture(model, (x,), fw="tf", method="tf-function")),
        ("onnx (tf2onnx)", bare_onnx, lambda: tracers.capture(model, (x,), fw="tf", method="onnx")),
    ]
    print(f"tensorflow {tf.__version__}, keras {keras.__version__}, tf2onnx {tf2onnx.__version__}; median of {args.repeat}")
    print("| model | method | bare call (s) | graphscope (s) | ratio | IR nodes |")
    print("|---|---|---:|---:|---:|---:|")
    for method, bare, ours in rows:
        t_bare = timed(bare, args.repeat)
        t_ours = timed(ours, args.repeat)
        n = len(ours())
        print(f"| ResNet50 | {method} | {t_bare:.2f} | {t_ours:.2f} | {t_ours / t_bare:.2f}x | {n} |", flush=True)


if __name__ == "__main__":
    main()
