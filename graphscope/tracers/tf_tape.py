"""The backward graph as TensorFlow builds it: ``trace --fw tf --backward`` (method ``tf-function``).

A ``tf.function`` train step is traced once: under a ``tf.GradientTape`` it runs the model (a
Keras model with ``training=True``) and ``loss_fn(output, *example_targets)`` (under the name
scope ``loss``), then ``tape.gradient(loss, model.trainable_variables)``, and returns the
output, the loss and the gradients. Its concrete function's graph is converted as
:mod:`graphscope.tracers.tf_function` converts any, and then each node gets its phase:

- the ops made by ``tape.gradient`` are ``backward``. While it runs, TensorFlow calls one
  gradient function per recorded forward op (``_gradient_function`` in ``backprop.py``, the
  callback the tape calls through ``TFE_Py_RegisterGradientFunction``); graphscope wraps that
  callback for the trace, and the ops each call adds to the graph are the gradient of that
  forward op: their ``grad_of``. The forward op is told by the tensors the callback is given
  (its outputs, else its inputs), else by its type in the name scope it ran in;
- a ``tf.function`` the model calls is one ``StatefulPartitionedCall``, and its gradient one
  ``PartitionedCall`` of its backward function (made by the function itself, not by a gradient
  function): its ``grad_of`` is the forward call whose outputs it reads;
- the ops ``tape.gradient`` makes outside any gradient function (the ``ones`` that seed it)
  are backward bookkeeping, ``grad_of`` null;
- each returned gradient (an ``Identity`` the function returns) is the gradient of its variable:
  its ``grad_of`` is the variable's first read (``ReadVariableOp``, a ``param`` node named by
  the variable), as a torch ``AccumulateGrad``'s is its parameter;
- everything else is ``forward``.

A backward node's scope is its forward node's (TensorFlow names it ``gradient_tape/...``), and so
is its source line when TensorFlow knows none of its own.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any

from graphscope import ir
from graphscope.errors import GraphscopeError
from graphscope.tracers import _tf_common as common
from graphscope.tracers import tf_function
from graphscope.tracers._training import argument_names, as_tuple

__all__ = ["Traced", "TrainStep", "capture", "trace_step", "variable_path"]

_GRADIENT_SCOPE = "gradient_tape"
_CALL_OPS = frozenset({"PartitionedCall", "StatefulPartitionedCall"})


def capture(
    model: Any,
    example_inputs: Any,
    *,
    name: str,
    method: str = "tf-function",
    example_targets: Any = None,
    loss_fn: Any = None,
    where: str = "the model",
) -> ir.Graph:
    """Forward, loss and backward graph of one training step of a Keras model or ``tf.Module``."""
    return trace_step(
        model, example_inputs, name=name, example_targets=example_targets, loss_fn=loss_fn, where=where
    ).graph


class Traced:
    """A traced training step: its IR (phases marked), the concrete function it came from
    (it returns ``output, loss, [gradient per variable]``), op name -> IR node id, the
    arguments it takes (example inputs, then targets), the variables that got a gradient and,
    in the same order, the function's gradients (tensors of ``cf.graph``, or ``IndexedSlices``
    of them: :func:`gradient_parts`)."""

    def __init__(
        self, graph: ir.Graph, ids: dict[str, str], cf: Any, args: tuple[Any, ...], variables: list[Any]
    ) -> None:
        self.graph, self.ids, self.cf, self.args, self.variables = graph, ids, cf, args, variables
        self.gradients = list(cf.structured_outputs[2])

    def variable_node(self, variable: Any) -> str | None:
        """The IR node that stands for ``variable`` (its first read)."""
        if not hasattr(self, "_variable_nodes"):
            self._variable_nodes = _variable_nodes(self.cf, self.ids)
        return self._variable_nodes.get(variable_path(variable))


def trace_step(
    model: Any,
    example_inputs: Any,
    *,
    name: str,
    example_targets: Any = None,
    loss_fn: Any = None,
    where: str = "the model",
) -> Traced:
    """:func:`capture`, keeping what a stepper needs to run the same function (``step --train``)."""
    tf = common.require_tf()
    inputs = as_tuple(example_inputs)
    targets = as_tuple(example_targets)
    _check_targets(loss_fn, targets, where)
    variables = list(getattr(model, "trainable_variables", None) or [])
    if not variables:
        raise GraphscopeError(
            f"{where}: the model has no trainable variables, so training it computes no gradients"
        )
    step = TrainStep(tf, model, variables, loss_fn, len(inputs), where)
    # Named placeholders: the model's own argument names, and loss_fn's after its output.
    names = argument_names(getattr(model, "call", model), len(inputs)) + argument_names(
        loss_fn, len(targets), skip=1, default="target"
    )
    specs = [_spec(tf, x, n) for x, n in zip((*inputs, *targets), names)]
    with common.tf_state_restored(), _gradient_calls_recorded() as calls:
        try:
            cf = tf.function(step).get_concrete_function(*specs)
        except Exception as exc:
            if step.problem is not None:  # said by the step itself (autograph rewraps it)
                raise GraphscopeError(step.problem) from None
            raise GraphscopeError(
                f"{where}: the training step cannot be traced: {tf_function._trace_error(exc)[:240]}"
            ) from None
    if step.problem is not None:
        raise GraphscopeError(step.problem)
    graph, ids = tf_function.convert(cf, model, name)
    _mark_phases(graph, ids, cf, step, calls, variables)
    return Traced(graph, ids, cf, (*inputs, *targets), [variables[i] for i in step.with_gradient])


def _check_targets(loss_fn: Any, targets: tuple[Any, ...], where: str) -> None:
    """Targets that loss_fn can be called with (autograph's own error names a generated function)."""
    for i, t in enumerate(targets):
        if t is None:
            raise GraphscopeError(
                f"{where}: example_targets[{i}] is None: give the values loss_fn compares with"
            )
    if loss_fn is None:
        return
    try:
        params = list(inspect.signature(loss_fn).parameters.values())
    except (TypeError, ValueError):
        return
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty][1:]  # after the output
    if len(required) > len(targets) and not any(p.kind == p.VAR_POSITIONAL for p in params):
        given = f"only {len(targets)}" if targets else "none (define example_targets)"
        raise GraphscopeError(
            f"{where}: loss_fn(output, {', '.join(p.name for p in required)}) takes "
            f"{len(required)} target(s), and the file gives {given}"
        )


def _spec(tf: Any, x: Any, name: str) -> Any:
    return tf.TensorSpec(x.shape, tf.as_dtype(x.dtype), name=name) if hasattr(x, "shape") else x


class TrainStep:
    """The function traced: forward, loss, gradients; it notes where each part starts and ends
    (op counts of the graph being built) and what is wrong with the training conventions."""

    def __init__(
        self, tf: Any, model: Any, variables: list[Any], loss_fn: Any, n_inputs: int, where: str
    ) -> None:
        self.tf, self.model, self.variables, self.loss_fn = tf, model, variables, loss_fn
        self.n_inputs, self.where = n_inputs, where
        self.problem: str | None = None
        self.gradient_ops = (0, 0)  # [start, end) in the graph's op list: tape.gradient's ops
        self.with_gradient: list[int] = []  # the variables that got one, in order
        # A Keras model runs as in training (dropout on, batch statistics) when it is told so.
        self.training = {"training": True} if _takes_training(model) else {}

    def __call__(self, *args: Any) -> Any:
        tf = self.tf
        inputs, targets = args[: self.n_inputs], args[self.n_inputs :]
        with tf.GradientTape() as tape:
            output = self.model(*inputs, **self.training)
            loss = self.loss(output, targets)
        graph = tf.compat.v1.get_default_graph()
        start = len(graph.get_operations())
        grads = tape.gradient(loss, self.variables)
        self.gradient_ops = (start, len(graph.get_operations()))
        self.with_gradient = [i for i, g in enumerate(grads) if g is not None]
        if not self.with_gradient:
            self.fail("the loss does not depend on any trainable variable")
        return output, loss, [grads[i] for i in self.with_gradient]

    def fail(self, problem: str) -> None:
        self.problem = f"{self.where}: {problem}"
        raise GraphscopeError(self.problem)

    def loss(self, output: Any, targets: tuple[Any, ...]) -> Any:
        if self.loss_fn is None:
            if not _is_scalar(output):
                self.fail(
                    f"the model's output is {_describe(output)}, not a scalar, and the file defines no "
                    "loss_fn(output, *targets) to make a loss of it"
                )
            return output
        shape = getattr(output, "shape", None)
        for i, t in enumerate(targets):
            if shape is not None and shape.rank and t.shape.rank and shape[0] != t.shape[0]:
                self.fail(
                    f"example_targets[{i}] has shape {t.shape.as_list()}, but the model's output has "
                    f"shape {shape.as_list()}: their first (batch) dimensions differ"
                )
        with self.tf.name_scope("loss"):
            try:
                if _is_keras_loss(self.loss_fn) and len(targets) == 1:
                    # Keras' Loss objects take (y_true, y_pred): the convention's order, swapped.
                    loss = self.loss_fn(targets[0], output)
                else:
                    loss = self.loss_fn(output, *targets)
            except GraphscopeError:
                raise
            except Exception as exc:
                # TensorFlow's shape errors go on to quote the node ("for '{{node loss/sub}} = ...").
                words = tf_function._trace_error(exc).split(" for '{{node")[0][:240]
                if targets and any(w in words.lower() for w in ("shape", "dimension", "broadcast")):
                    self.fail(f"example_targets do not fit the model's output ({_describe(output)}): {words}")
                self.fail(f"loss_fn(output, *example_targets) raised {type(exc).__name__}: {words}")
        if not _is_scalar(loss):
            self.fail(f"loss_fn(output, *example_targets) returned {_describe(loss)}, not a scalar")
        return loss


def _takes_training(model: Any) -> bool:
    try:
        params = inspect.signature(getattr(model, "call", model)).parameters
    except (TypeError, ValueError):
        return False
    return "training" in params


def _is_keras_loss(loss_fn: Any) -> bool:
    """A ``keras.losses.Loss`` object (``MeanSquaredError()``, ``SparseCategoricalCrossentropy()``)."""
    return any(c.__name__ == "Loss" and c.__module__.startswith("keras") for c in type(loss_fn).__mro__)


def _is_scalar(value: Any) -> bool:
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is None or dtype is None or not getattr(dtype, "is_floating", False):
        return False
    dims = shape.as_list() if shape.rank is not None else None
    return dims is not None and all(d == 1 for d in dims)


def _describe(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None and shape.rank is not None:
        return f"a tensor of shape {shape.as_list()}" if shape.rank else f"a {value.dtype.name} tensor"
    return f"a {type(value).__name__}"


# -- which forward op each gradient op differentiates ----------------------------------------------


@contextlib.contextmanager
def _gradient_calls_recorded() -> Iterator[list[tuple[str, str, list[Any], list[Any], list[str]]]]:
    """Record every gradient-function call the tape makes while tracing: (forward op type, its
    name scope, its output tensors, its input tensors, the names of the ops the call added)."""
    from tensorflow.python import pywrap_tfe
    from tensorflow.python.eager import backprop
    from tensorflow.python.framework import ops

    original = backprop._gradient_function
    calls: list[tuple[str, str, list[Any], list[Any], list[str]]] = []

    def recorded(
        op_type: str,
        attrs: Any,
        num_inputs: int,
        inputs: Any,
        outputs: Any,
        out_grads: Any,
        skip_input_indices: Any,
        name_scope: str,
    ) -> Any:
        graph = ops.get_default_graph()
        before = len(graph.get_operations())
        result = original(
            op_type, attrs, num_inputs, inputs, outputs, out_grads, skip_input_indices, name_scope
        )
        made = [op.name for op in graph.get_operations()[before:]]
        calls.append((op_type, name_scope or "", list(outputs or ()), list(inputs or ()), made))
        return result

    pywrap_tfe.TFE_Py_RegisterGradientFunction(recorded)
    try:
        yield calls
    finally:
        pywrap_tfe.TFE_Py_RegisterGradientFunction(original)


def _forward_op(
    call: tuple[str, str, list[Any], list[Any], list[str]], ops: list[Any], claimed: set[str]
) -> str | None:
    """The forward op a gradient call differentiates (see the module docstring)."""
    op_type, scope, outputs, inputs, _ = call
    for t in outputs:
        if t is not None and hasattr(t, "op"):
            return str(t.op.name)
    same_type = [op for op in ops if op.type == op_type and op.name not in claimed]
    if inputs and all(t is not None and hasattr(t, "name") for t in inputs):
        names = [t.name for t in inputs]
        fed = [op for op in same_type if [t.name for t in op.inputs] == names]
        if len(fed) == 1:
            return str(fed[0].name)
    scoped = [op for op in same_type if op.name == scope or op.name.rpartition("/")[0] == scope]
    # The tape differentiates in reverse order: the last such op not yet claimed is this one.
    return str(scoped[-1].name) if scoped else None


def _mark_phases(
    graph: ir.Graph,
    ids: dict[str, str],
    cf: Any,
    step: TrainStep,
    calls: list[tuple[str, str, list[Any], list[Any], list[str]]],
    variables: list[Any],
) -> None:
    ops = cf.graph.get_operations()
    start, end = step.gradient_ops
    forward_ops = ops[:start]
    claimed: set[str] = set()
    grad_of: dict[str, str | None] = {op.name: None for op in ops[start:end]}  # backward op -> forward op
    for call in calls:
        forward = _forward_op(call, forward_ops, claimed)
        if forward is None:
            continue
        claimed.add(forward)
        for made in call[4]:
            if made in grad_of:
                grad_of[made] = forward
    forward_names = {op.name for op in forward_ops}
    for op in ops[start:end]:
        if grad_of[op.name] is None and op.type in _CALL_OPS:
            # A tf.function called from the model differentiates as a call of its backward
            # function, made by the function's own gradient, not by a gradient function: it
            # reads the forward call's outputs.
            calls_read = {
                t.op.name for t in op.inputs if t.op.name in forward_names and t.op.type in _CALL_OPS
            }
            if len(calls_read) == 1:
                grad_of[op.name] = calls_read.pop()
    # Each returned gradient is its variable's, all of its parts: the function's outputs
    # after output and loss.
    variable_nodes = _variable_nodes(cf, ids)
    for gradient, i in zip(cf.structured_outputs[2], step.with_gradient, strict=True):
        for part in gradient_parts(gradient):
            grad_of[part.op.name] = variable_nodes.get(variable_path(variables[i]))
    for op_name, forward in grad_of.items():
        node = graph.node(ids[op_name])
        node["phase"] = "backward"
        if forward is None:
            if node["scope"][:1] == [_GRADIENT_SCOPE]:
                node["scope"] = node["scope"][1:]
            continue
        forward_id = forward if forward in graph else ids.get(forward, forward)
        node["grad_of"] = forward_id
        fwd = graph.node(forward_id)
        node["scope"] = list(fwd["scope"])
        if node["source"] is None:
            node["source"] = fwd["source"]


def gradient_parts(gradient: Any) -> list[Any]:
    """The tensors of one gradient: itself, or an ``IndexedSlices``' values, row indices and
    dense shape (``tape.gradient`` gives an embedding the rows it looked up, not a dense table):
    the function returns each part as an output of its own."""
    if hasattr(gradient, "indices"):
        return [t for t in (gradient.values, gradient.indices, gradient.dense_shape) if t is not None]
    return [gradient]


def variable_path(variable: Any) -> str:
    return str(getattr(variable, "path", None) or variable.name.removesuffix(":0"))


def _variable_nodes(cf: Any, ids: dict[str, str]) -> dict[str, str]:
    """Variable path -> the IR node that stands for the variable: its first read
    (``ReadVariableOp``, the value the forward pass uses, and what diff matches a torch
    parameter with), else its captured handle."""
    first_read: dict[str, str] = {}
    for op in cf.graph.get_operations():
        if op.type == "ReadVariableOp" and op.inputs:
            first_read.setdefault(op.inputs[0].op.name, op.name)
    out: dict[str, str] = {}
    for op_name, path in tf_function._variable_names(cf).items():
        node = first_read.get(op_name, op_name)
        if node in ids:
            out.setdefault(path, ids[node])
    return out
