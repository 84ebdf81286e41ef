"""A TensorFlow training step, stepped, against a plain Keras train step and TF's numeric debuggers.

    .venv/bin/python bench/bench_step_train_tf.py [--rounds 2] [--repeat 2] [--batch 4]
    .venv/bin/python bench/bench_step_train_tf.py --watch-steps 10 [--rounds 2] [--batch 4]

On keras.applications.ResNet50(weights=None) at Nx224x224x3 with Adam (built before the
baseline memory is read), each tool in a fresh process (their instrumentation is process-wide,
and peak RSS must be each tool's own); the tools' processes are interleaved, round after round
(A B C D A B C D ...), and the figures are medians over the rounds:

- plain step: `tf.function(train_step)`, a GradientTape over the model (training=True) and the
  loss, `tape.gradient`, `optimizer.apply` — its first call (trace + run) and later calls;
- graphscope step --train: `graphscope.stepping.tf_train.step_train(...)` — every call traces
  the train step, adds the summary nodes, runs it once, applies the optimizer, and puts every
  variable back; so it compares with the plain step's first call;
- check_numerics: `tf.debugging.enable_check_numerics()`, then the plain step;
- FULL_HEALTH: `tf.debugging.experimental.enable_dump_debug_info(dir,
  tensor_debug_mode="FULL_HEALTH", circular_buffer_size=-1)`, then the plain step.

Then each tool runs once on two injected faults (batch 2): `sqrt` at zero in the loss
(`tf.sqrt(probs * mask)` with a 0 in the mask: the forward pass is finite, the gradient of the
sqrt is +inf, and everything after it NaN), and a NaN stored in one weight of `conv1_conv`.
"Named the origin" is what the tool itself says: graphscope's `first_nonfinite`;
check_numerics' error (the op it stopped at); FULL_HEALTH's dump read back with
`DebugDataReader` (the first op whose output had a NaN or Inf, in execution order); the plain
step only shows a non-finite loss or weights.

With ``--watch-steps N``: N training steps of the plain step's loop (the loss read back each
step) against ``graphscope watch`` for N steps, each process's total, its first call included.
"""

from __future__ import annotations

import argparse
import json
import os
import re
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

TOOLS = ["plain step", "graphscope step --train", "check_numerics", "FULL_HEALTH"]
FAULTS = ["sqrt at zero", "NaN weight"]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _setup(batch: int, fault: str | None) -> tuple[Any, ...]:
    import keras
    import numpy as np
    import tensorflow as tf

    warnings.simplefilter("ignore")
    keras.utils.set_random_seed(0)
    model = keras.applications.ResNet50(weights=None)
    optimizer = keras.optimizers.Adam(1e-4)
    optimizer.build(model.trainable_variables)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(batch, 224, 224, 3)).astype(np.float32))
    y = tf.one_hot(rng.integers(0, 1000, batch), 1000)
    mask = np.ones((1, 1000), np.float32)
    mask[0, 0] = 0.0
    mask_t = tf.constant(mask)

    def loss_fn(probs: Any, target: Any) -> Any:
        loss = tf.reduce_mean(keras.losses.categorical_crossentropy(target, probs))
        if fault == "sqrt at zero":
            loss += 1e-3 * tf.reduce_sum(tf.sqrt(probs * mask_t))  # sqrt(0) where the mask is 0
        return loss

    if fault == "NaN weight":
        kernel = model.get_layer("conv1_conv").kernel
        kernel.assign(tf.tensor_scatter_nd_update(kernel, [[3, 3, 0, 0]], [float("nan")]))
    return tf, model, optimizer, x, y, loss_fn


def _plain_step(tf: Any, model: Any, optimizer: Any, loss_fn: Any) -> Any:
    def train_step(x: Any, y: Any) -> Any:
        with tf.GradientTape() as tape:
            loss = loss_fn(model(x, training=True), y)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    return tf.function(train_step)


def _instrument(tf: Any, tool: str) -> str | None:
    if tool == "FULL_HEALTH":
        folder = tempfile.mkdtemp(prefix="tfdbg-")
        tf.debugging.experimental.enable_dump_debug_info(
            folder, tensor_debug_mode="FULL_HEALTH", circular_buffer_size=-1
        )
        return folder
    if tool == "check_numerics":
        tf.debugging.enable_check_numerics()
    return None


def timing_worker(tool: str, repeat: int, batch: int) -> dict[str, Any]:
    tf, model, optimizer, x, y, loss_fn = _setup(batch, None)
    base = _rss_mb()
    _instrument(tf, tool)
    if tool == "graphscope step --train":
        from graphscope.stepping import tf_train

        def first() -> Any:
            return tf_train.step_train(
                model, (x,), name="resnet50", example_targets=(y,), loss_fn=loss_fn, optimizer=optimizer
            )

        later = None
    else:

        def first() -> Any:
            return _plain_step(tf, model, optimizer, loss_fn)(x, y)

        step = _plain_step(tf, model, optimizer, loss_fn)

        def later() -> Any:
            return step(x, y).numpy()

    def once(call: Any) -> float:
        start = time.perf_counter()
        call()
        return time.perf_counter() - start

    row: dict[str, Any] = {"first": once(first)}
    row["later"] = statistics.median(once(later) for _ in range(repeat)) if later else None
    row["peak_mb"] = _rss_mb()
    row["above_mb"] = row["peak_mb"] - base
    return row


def watch_worker(tool: str, steps: int, batch: int) -> dict[str, Any]:
    """``steps`` training steps, the first call (its trace) included: the plain step's loop, or
    ``graphscope watch``'s (its numbers per step, the state kept before each)."""
    tf, model, optimizer, x, y, loss_fn = _setup(batch, None)
    base = _rss_mb()
    start = time.perf_counter()
    if tool == "graphscope watch":
        from graphscope.stepping import tf_watch

        found = tf_watch.watch(
            model,
            (x,),
            steps=steps,
            name="resnet50",
            example_targets=(y,),
            loss_fn=loss_fn,
            optimizer=optimizer,
        )
        assert len(found.history) == steps
    else:
        step = _plain_step(tf, model, optimizer, loss_fn)
        for _ in range(steps):
            float(step(x, y))  # the loss read back, as a training loop logging it does
    return {"time": time.perf_counter() - start, "above_mb": _rss_mb() - base}


def origin_worker(tool: str, fault: str, batch: int) -> dict[str, Any]:
    tf, model, optimizer, x, y, loss_fn = _setup(batch, fault)
    folder = _instrument(tf, tool)
    if tool == "graphscope step --train":
        from graphscope.stepping import tf_train

        steps = tf_train.step_train(
            model, (x,), name="resnet50", example_targets=(y,), loss_fn=loss_fn, optimizer=optimizer
        )
        bad = steps.as_dict()["first_nonfinite"]
        if bad is None:
            return {"said": "all finite"}
        said = f"{bad['op']} {bad['node']} ({bad['phase']}, born {bad['born']})"
        if bad.get("origin"):
            said += f", origin {bad['origin']['kind']} {bad['origin']['name']}"
        if bad.get("grad_of"):
            src = bad["grad_of"]["source"]
            said += f", the gradient of {bad['grad_of']['op']}" + (
                f" at {src['file']}:{src['line']}" if src else ""
            )
        return {"said": said}
    try:
        loss = _plain_step(tf, model, optimizer, loss_fn)(x, y)
    except Exception as exc:
        text = str(exc)
        op = re.search(r'graph op "([\w/]+)"', text)
        node = re.search(r"Detected at node (\S+?)/CheckNumerics", text)
        lines = re.findall(r'File "[^"]*bench_step_train_tf.py", line (\d+)', text)
        return {
            "said": f"stopped at {op.group(1) if op else '?'} {node.group(1) if node else '?'}"
            + (f", created at bench_step_train_tf.py:{lines[-1]}" if lines else "")
        }
    nonfinite_weights = sum(
        int(tf.reduce_sum(tf.cast(~tf.math.is_finite(v), tf.int32))) for v in model.trainable_variables
    )
    said = f"loss {float(loss):.4g}, {nonfinite_weights} non-finite weight values after the step"
    if folder is not None:
        tf.debugging.experimental.disable_dump_debug_info()
        from tensorflow.python.debug.lib import debug_events_reader

        with debug_events_reader.DebugDataReader(folder) as reader:
            reader.update()
            for trace in reader.graph_execution_traces():
                health = trace.debug_tensor_value
                # FULL_HEALTH: [id, device, dtype, rank, size, -inf, +inf, nan, -, 0, +]
                if health is not None and len(health) >= 8 and sum(health[5:8]) > 0:
                    said += f"; the dump's first non-finite op: {trace.op_type} {trace.op_name}"
                    break
    return {"said": said}


def _run(args: list[str]) -> dict[str, Any] | str:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        return "failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1][:100]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--worker", metavar="TOOL")
    parser.add_argument("--fault")
    parser.add_argument("--only-origins", action="store_true", help="Only the injected faults' table.")
    parser.add_argument("--watch-steps", type=int, default=0, help="Only compare watch with plain steps.")
    args = parser.parse_args()
    if args.watch_steps and args.worker:
        print(json.dumps(watch_worker(args.worker, args.watch_steps, args.batch)))
        return
    if args.watch_steps:
        print(f"ResNet50, Adam, batch {args.batch}: {args.watch_steps} training steps, first call included")
        print()
        got: dict[str, list[dict[str, Any]]] = {"plain steps": [], "graphscope watch": []}
        for _ in range(args.rounds):
            for tool in got:
                one = _run(
                    ["--batch", str(args.batch), "--watch-steps", str(args.watch_steps), "--worker", tool]
                )
                if isinstance(one, str):
                    print(f"{tool}: {one}", file=sys.stderr)
                else:
                    got[tool].append(one)
        print("| tool | time (s) | × plain | above model (MB) |")
        print("|---|---:|---:|---:|")
        plain_time = statistics.median(r["time"] for r in got["plain steps"])
        for tool, rows in got.items():
            t = statistics.median(r["time"] for r in rows)
            mem = statistics.median(r["above_mb"] for r in rows)
            print(f"| {tool} | {t:.1f} | {t / plain_time:.2f} | {mem:.0f} |")
        return
    if args.worker and args.fault:
        print(json.dumps(origin_worker(args.worker, args.fault, args.batch)))
        return
    if args.worker:
        print(json.dumps(timing_worker(args.worker, args.repeat, args.batch)))
        return
    if args.only_origins:
        _origins()
        return
    print(f"ResNet50 (keras.applications, weights=None), Adam, batch {args.batch}, 224x224x3")
    print()
    rows: dict[str, list[dict[str, Any]]] = {tool: [] for tool in TOOLS}
    for _ in range(args.rounds):
        for tool in TOOLS:
            got = _run(["--repeat", str(args.repeat), "--batch", str(args.batch), "--worker", tool])
            if isinstance(got, str):
                print(f"{tool}: {got}", file=sys.stderr)
            else:
                rows[tool].append(got)
    med = {
        tool: {k: statistics.median(r[k] for r in got) if got[0][k] is not None else None for k in got[0]}
        for tool, got in rows.items()
        if got
    }
    plain = med.get("plain step")
    print(
        "| tool | first call: trace + run (s) | × plain first | later call (s) | × plain later "
        "| peak RSS (MB) | above model (MB) | × plain above |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for tool, row in med.items():
        later = f"{row['later']:.2f}" if row["later"] is not None else "(traces every call)"
        x_first = row["first"] / plain["first"] if plain else float("nan")
        x_later = (
            row["first"] / plain["later"]
            if plain and row["later"] is None
            else (row["later"] / plain["later"] if plain and row["later"] else float("nan"))
        )
        x_mem = row["above_mb"] / plain["above_mb"] if plain else float("nan")
        print(
            f"| {tool} | {row['first']:.2f} | {x_first:.2f} | {later} | {x_later:.2f} "
            f"| {row['peak_mb']:.0f} | {row['above_mb']:.0f} | {x_mem:.2f} |",
            flush=True,
        )
    print()
    _origins()


def _origins() -> None:
    print("| tool | " + " | ".join(FAULTS) + " |")
    print("|---|" + "---|" * len(FAULTS))
    for tool in TOOLS:
        cells = []
        for fault in FAULTS:
            got = _run(["--batch", "2", "--worker", tool, "--fault", fault])
            cells.append(got if isinstance(got, str) else got["said"])
        print(f"| {tool} | " + " | ".join(c.replace("|", "/") for c in cells) + " |", flush=True)


if __name__ == "__main__":
    main()
