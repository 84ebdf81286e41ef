"""``graphscope watch --fw tf``: many TensorFlow training steps kept cheap, and the first one
that went non-finite stepped in full.

Each step is one call of a compiled ``tf.function``: the model (``training=True``) and the loss
under a ``GradientTape``, ``tape.gradient``, the Keras optimizer's ``apply``, and a few numbers
computed in the same graph: the loss, each variable's squared gradient norm (summed per layer
and overall outside), and how many values of the gradients and of the updated variables are NaN
or infinite. Every few steps the variables' and the optimizer's values are copied (on the
device, no trip through numpy; :func:`watching.run` says how often); at the first step in which
any of those numbers is non-finite, that state is put back, the steps since taken again, and the
step replayed with ``step --train``
(:mod:`graphscope.stepping.tf_train`) to name where the value was born. The user's variables and
optimizer are left as they were: an optimizer not built yet stays unbuilt (the run trains a fresh
copy of it). The history, JSON and text are the PyTorch watch's (:mod:`torch_watch`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from graphscope.errors import GraphscopeError
from graphscope.stepping import tf_graph, tf_train, watching
from graphscope.stepping.watching import Watch
from graphscope.tracers import _tf_common as common
from graphscope.tracers import tf_function, tf_tape

__all__ = ["watch", "watch_target"]


def watch(
    model: Any,
    example_inputs: Any,
    *,
    steps: int,
    name: str,
    example_targets: Any = None,
    loss_fn: Any = None,
    optimizer: Any = None,
    batches: Callable[[], Any] | None = None,
    where: str = "the model",
) -> Watch:
    tf = common.require_tf()
    watching.check(steps, optimizer, where, "a Keras optimizer over the model's trainable_variables")
    tf_train.check_optimizer(model, optimizer, where)
    variables = list(getattr(model, "trainable_variables", None) or [])
    if not variables:
        raise GraphscopeError(
            f"{where}: the model has no trainable variables, so training it computes no gradients"
        )
    with tf_train.restored(model, optimizer), common.tf_state_restored():
        if not optimizer.built:
            optimizer = tf_train.fresh_copy(optimizer, where)  # the user's stays unbuilt
            try:
                optimizer.build(variables)
            except Exception as exc:
                raise GraphscopeError(f"{where}: the optimizer cannot be built: {exc}") from None
        state = tf_train.state_variables(model, optimizer)
        train = _TrainStep(tf, model, variables, optimizer, loss_fn, where)

        def snapshot() -> Callable[[], None]:
            # A copy now, not a read the update then copies on write: the time it takes is the
            # keeping's, which decides how often the run keeps the state (watching.run).
            values = [tf.raw_ops.DeepCopy(x=tf.convert_to_tensor(v)) for v in state]

            def restore() -> None:
                for v, value in zip(state, values):
                    v.assign(value)

            return restore

        found = watching.run(
            watching.batches(example_inputs, example_targets, batches, steps, where),
            snapshot=snapshot,
            take_step=lambda inputs, targets, number: train.run(inputs, targets, number, batches is not None),
            replay=lambda inputs, targets: tf_train.step_train(
                model,
                inputs,
                name=name,
                example_targets=targets,
                loss_fn=loss_fn,
                optimizer=optimizer,
                where=where,
            ),
        )
    return found


def watch_target(found: Any, *, steps: int) -> Watch:
    """:func:`watch` on what the loader found in a model file (its optimizer, batches, ...)."""
    return watch(found.model, found.example_inputs, steps=steps, **watching.file_arguments(found))


class _TrainStep:
    """The compiled training step and its cheap numbers; the loss checked as ``trace --backward``
    checks it (a scalar, targets that fit), once per trace."""

    def __init__(
        self, tf: Any, model: Any, variables: list[Any], optimizer: Any, loss_fn: Any, where: str
    ) -> None:
        self.tf, self.model, self.variables, self.optimizer = tf, model, variables, optimizer
        self.loss_fn, self.where = loss_fn, where
        self.layers = [_layer(v) for v in variables]
        self.function = tf.function(self._step, reduce_retracing=True)
        self.checks: Any = None

    def _step(self, inputs: tuple[Any, ...], targets: tuple[Any, ...]) -> Any:
        tf = self.tf
        checks = self.checks
        with tf.GradientTape() as tape:
            output = self.model(*inputs, **checks.training)
            loss = checks.loss(output, targets)
        grads = tape.gradient(loss, self.variables)
        pairs = [(g, v) for g, v in zip(grads, self.variables) if g is not None]
        if not pairs:
            checks.fail("the loss does not depend on any trainable variable")
        squares, bad = _squared_norms(tf, [None if g is None else tf.convert_to_tensor(g) for g in grads])
        self.optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
        bad += _nonfinite_after(tf, [tf.convert_to_tensor(v) for v in self.variables])
        return tf.cast(loss, tf.float64), squares, bad, tf.constant([g is not None for g in grads])

    def run(
        self, inputs: tuple[Any, ...], targets: tuple[Any, ...], number: int, batched: bool
    ) -> dict[str, Any]:
        tf = self.tf
        self.checks = tf_tape.TrainStep(tf, self.model, self.variables, self.loss_fn, len(inputs), self.where)
        try:
            loss, squares, bad, has = self.function(tuple(inputs), tuple(targets))
        except Exception as exc:
            if self.checks.problem is not None:  # said by the checks (autograph rewraps it)
                raise GraphscopeError(self.checks.problem) from None
            what = f"step {number} (a batch from batches())" if batched else f"step {number}"
            if isinstance(exc, tf.errors.OpError):  # while running: the node and the user's line
                said = tf_graph._run_error(exc, "", None).args[0]
                reason = said.split("failed while running on its example inputs", 1)[-1]
            else:  # while tracing: the user's exception
                reason = ": " + _reason(exc)[:240]
            raise GraphscopeError(f"{self.where}: {what} failed{reason}") from None
        loss_value = float(loss)
        squares = squares.numpy()
        has = has.numpy()
        layers: dict[str, float] = {}
        total = 0.0
        for layer, square, got in zip(self.layers, squares, has):
            if not got:
                continue
            total += float(square)
            layers[layer] = layers.get(layer, 0.0) + float(square)
        nonfinite = int(bad) + (0 if math.isfinite(loss_value) else 1)
        return {
            "loss": loss_value if math.isfinite(loss_value) else str(loss_value),
            "grad_norm": watching.number(math.sqrt(total)),
            "module_grad_norms": {k: watching.number(math.sqrt(v)) for k, v in layers.items()},
            "nonfinite": nonfinite,
        }


def _reason(exc: BaseException) -> str:
    """The user's error in one line; for a Keras layer's, its reason, not the arguments it got."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # Keras bolds its messages
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        if re.match(r"^\w+(Error|Exception): ", line):
            if "Exception encountered when calling" in line and i + 1 < len(lines):
                return lines[i + 1]
            return line
    return tf_function._trace_error(exc)


# Each step reads every gradient and every variable once more than a plain step: the cheap
# pass first, the exact one only when it says something is off. (Counting non-finite values
# with an int64 cast of every value, and squaring in float64, cost ResNet50 four more passes
# over 25.6M values a step.) The exact pass is one ``tf.cond`` over all the tensors, not a
# cond per tensor: TensorFlow traces and optimises both branches of each, and ResNet50's 214
# gradients and 214 variables made the step's first call 19.6 s against a plain step's 8.9 s.
# (Laying the tensors end to end in one branch instead made Grappler fold the index of each
# value into constants: 5 GB.)


def _squared_norms(tf: Any, grads: list[Any]) -> tuple[Any, Any]:
    """Each gradient's squared norm in float64 (0 for a missing or integer one) and how many of
    their values are NaN or infinite. Summed in each gradient's own dtype first; only when one
    of those sums is not finite are they summed again in float64 (a float32 sum of squares
    overflows at gradients of 1e19, which is when a norm matters) and the non-finite values
    counted."""
    zero = tf.constant(0.0, tf.float64)
    floating = [g is not None and g.dtype.is_floating for g in grads]
    fast = tf.stack(
        [tf.cast(tf.reduce_sum(tf.square(g)), tf.float64) if f else zero for g, f in zip(grads, floating)]
    )
    if not any(floating):
        return fast, tf.constant(0, tf.int64)

    def exact() -> tuple[Any, Any]:
        squares = [
            tf.reduce_sum(tf.square(tf.cast(g, tf.float64))) if f else zero for g, f in zip(grads, floating)
        ]
        bad = [_count(tf, g) for g, f in zip(grads, floating) if f]
        return tf.stack(squares), tf.add_n([tf.constant(0, tf.int64), *bad])

    return tf.cond(tf.reduce_all(tf.math.is_finite(fast)), lambda: (fast, tf.constant(0, tf.int64)), exact)


def _nonfinite_after(tf: Any, variables: list[Any]) -> Any:
    """How many values of the updated variables are NaN or infinite: a plain sum of each one's
    values is finite when none is (the exact count runs only when a sum is not, an overflow of
    large finite values included)."""
    floating = [v for v in variables if v.dtype.is_floating]
    if not floating:
        return tf.constant(0, tf.int64)
    sums = tf.stack([tf.cast(tf.reduce_sum(v), tf.float64) for v in floating])
    return tf.cond(
        tf.reduce_all(tf.math.is_finite(sums)),
        lambda: tf.constant(0, tf.int64),
        lambda: tf.add_n([tf.constant(0, tf.int64), *(_count(tf, v) for v in floating)]),
    )


def _count(tf: Any, t: Any) -> Any:
    return tf.reduce_sum(tf.cast(tf.logical_not(tf.math.is_finite(t)), tf.int64))


def _layer(variable: Any) -> str:
    """The layer a variable belongs to: its path without the last part (Keras ``mlp/hidden``)."""
    return tf_tape.variable_path(variable).rpartition("/")[0] or "(top level)"
