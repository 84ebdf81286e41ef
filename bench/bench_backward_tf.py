"""Capturing a training step's graph (``trace --fw tf --backward``) against one plain tf.function train step.

    .venv/bin/python bench/bench_backward_tf.py [--repeat 3]

Model: ``keras.applications.ResNet50(weights=None)`` on one 224x224x3 image, the loss the
output's mean square (as in bench_backward_torch.py). "Plain step" is what a Keras user's
custom training loop does on its first step: a fresh ``tf.function`` whose body runs the model
(``training=True``) and the loss under a ``GradientTape`` and returns ``tape.gradient(loss,
model.trainable_variables)``, called once: it traces, then runs. "graphscope" is
``tracers.capture_backward(..., fw="tf")`` (what ``trace --fw tf --backward`` runs): the same
train step traced (not run) into a concrete function, converted to the IR, each node's phase and
``grad_of`` set, validated. A traced function is cached by its tf.function, so every run of
either starts from a fresh one. The two run alternately after one warm-up each; each figure is
the median of --repeat runs. "later step" is the plain step's second call (no tracing): what a
step costs once the function is traced, for scale.
"""

from __future__ import annotations

import argparse
import os
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
from _timing import timed_pair

from graphscope import tracers


def loss_fn(output: Any) -> Any:
    return tf.reduce_mean(tf.square(tf.cast(output, tf.float32)))


def train_step_function(model: Any) -> Any:
    """A fresh tf.function train step (forward, loss, gradients), as a custom training loop
    writes it."""

    @tf.function
    def train_step(x: Any) -> Any:
        with tf.GradientTape() as tape:
            loss = loss_fn(model(x, training=True))
        return loss, tape.gradient(loss, model.trainable_variables)

    return train_step


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    tf.get_logger().setLevel("ERROR")  # every run retraces on purpose: no retracing warning
    tf.config.get_soft_device_placement()  # the eager context up front, as capture does
    model = keras.applications.ResNet50(weights=None)
    x = np.zeros((1, 224, 224, 3), np.float32)

    def plain_first_call() -> Any:
        return train_step_function(model)(x)

    def capture() -> Any:
        return tracers.capture_backward(model, (x,), fw="tf", loss_fn=loss_fn, name="m")

    graph = capture()
    phases = [n["phase"] for n in graph.nodes()]
    plain, ours = timed_pair(plain_first_call, capture, args.repeat)
    step = train_step_function(model)
    step(x)
    later = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        step(x)
        later.append(time.perf_counter() - start)
    later.sort()
    counts = f"{phases.count('forward'):,} / {phases.count('backward'):,}"
    print(f"tensorflow {tf.__version__}, keras {keras.__version__}; median of {args.repeat}")
    print(
        "| model | plain step, first call: trace + run (s) | graphscope (s) | ratio "
        "| later step (s) | forward / backward nodes |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    print(
        f"| Keras ResNet50 (1x224x224x3) | {plain:.2f} | {ours:.2f} | {ours / plain:.2f}x "
        f"| {later[len(later) // 2]:.3f} | {counts} |"
    )


if __name__ == "__main__":
    main()
