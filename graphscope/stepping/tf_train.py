"""One TensorFlow training step, stepped: forward, loss and ``tape.gradient``, every value
summarised in the order the ops were built, then the optimizer's update (``step --fw tf --train``).

The step is the ``tf.function`` that ``trace --backward`` traces
(:mod:`graphscope.tracers.tf_tape`): under a ``GradientTape`` the model (``training=True``), the
loss, then the gradients of the trainable variables. Its concrete function is run once with a
summary of every op's output (:func:`graphscope.stepping.tf_graph.run_summarised`, as forward
stepping does), the gradients fetched whole. Records come in the function's op order: forward
and loss, then the gradient ops as the tape made them; each backward node carries ``phase`` and
``grad_of`` (the forward op, whose source line it inherits). Every record keeps its inputs'
summaries, so a NaN read from a weight names that variable as its origin, and a gradient that
became infinite from finite inputs was born there.

With a Keras ``optimizer`` in the model file, ``optimizer.apply`` follows, eagerly, on the
fetched gradients: one ``optimizer`` record per variable, its new value, with the
update-to-weight ratio in the node's attributes. The user's variables (the non-trainable ones
too: batch-norm statistics, seed generators) and the optimizer's state are put back as they
were found; an optimizer not yet built is left unbuilt (the update runs on a fresh copy of it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from graphscope import ir
from graphscope.errors import GraphscopeError
from graphscope.stepping import numerics, tf_graph
from graphscope.stepping.records import Record, Steps
from graphscope.tracers import _tf_common as common
from graphscope.tracers import tf_tape

__all__ = ["check_optimizer", "fresh_copy", "restored", "state_variables", "step_train"]


def step_train(
    model: Any,
    example_inputs: Any,
    *,
    name: str,
    example_targets: Any = None,
    loss_fn: Any = None,
    optimizer: Any = None,
    where: str = "the model",
) -> Steps:
    common.require_tf()
    if optimizer is not None:
        check_optimizer(model, optimizer, where)
    traced = tf_tape.trace_step(
        model, example_inputs, name=name, example_targets=example_targets, loss_fn=loss_fn, where=where
    )
    graph = traced.graph
    notes = tf_graph._call_notes(graph)  # a cond or loop's body is stepped at its outputs
    with restored(model, optimizer), common.tf_state_restored():
        parts = [t for g in traced.gradients for t in tf_tape.gradient_parts(g)]
        run = tf_graph.run_summarised(traced.cf, traced.args, name, parts)
        records = _records(traced, run.summaries)
        if optimizer is not None:
            _run_update(traced, optimizer, _gradients(traced, run.outputs), records, where)
        else:
            notes.append(
                "no optimizer in the model file: forward, loss and backward are stepped, not an update"
            )
    for i, rec in enumerate(records):
        rec.index = i
    return Steps(graph, records, notes=notes)


def check_optimizer(model: Any, optimizer: Any, where: str) -> None:
    """A Keras optimizer, and when it has been built, over the model's own variables."""
    import keras

    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise GraphscopeError(
            f"{where}: optimizer must be a Keras optimizer (keras.optimizers), not a {type(optimizer).__name__}"
        )
    theirs = list(getattr(optimizer, "_trainable_variables", None) or []) if optimizer.built else []
    mine = {id(_tf_variable(v)) for v in getattr(model, "trainable_variables", None) or []}
    if any(id(_tf_variable(v)) not in mine for v in theirs):
        raise GraphscopeError(
            f"{where}: the optimizer updates variables that are not the model's "
            "(it was built for another model's trainable_variables)"
        )


def _tf_variable(v: Any) -> Any:
    """The tf.Variable behind a Keras variable (Keras 3 wraps it), or the variable itself."""
    return getattr(v, "value", v) if not hasattr(v, "handle") else v


@contextmanager
def restored(model: Any, optimizer: Any) -> Iterator[None]:
    """Put every variable of ``model`` and of a built ``optimizer`` back as it was on leaving
    (a training step assigns weights, batch-norm statistics, seed states, slots, iterations)."""
    tf = common.require_tf()
    # A read shares the variable's buffer, and TensorFlow copies it before an update writes to
    # a shared one: the snapshot costs memory only for what the step changes.
    saved = [(v, tf.identity(v)) for v in state_variables(model, optimizer)]
    try:
        yield
    finally:
        for v, value in saved:
            v.assign(value)


def state_variables(model: Any, optimizer: Any) -> list[Any]:
    out: dict[int, Any] = {}
    for v in list(getattr(model, "variables", None) or []):
        out.setdefault(id(_tf_variable(v)), v)
    if optimizer is not None and optimizer.built:
        for v in optimizer.variables:
            out.setdefault(id(_tf_variable(v)), v)
    return list(out.values())


def _records(traced: tf_tape.Traced, summaries: dict[str, dict[int, dict[str, Any]]]) -> list[Record]:
    """One record per op with outputs, in the order the function's ops were built (forward and
    loss first, then the gradients as the tape made them), each with its inputs' summaries."""
    graph, ids = traced.graph, traced.ids
    records: list[Record] = []
    for op in traced.cf.graph.get_operations():
        ports = summaries.get(op.name)
        if ports is None:
            continue
        node_id = ids[op.name]
        n = graph.node(node_id)
        outputs = [ports.get(p) for p in range(max(len(op.outputs), max(ports) + 1))]
        inputs = [summaries.get(t.op.name, {}).get(t.value_index) for t in op.inputs]
        input_nodes = [ids.get(t.op.name, t.op.name) for t in op.inputs]
        records.append(
            Record(0, node_id, n["op"], list(n["scope"]), n["source"], outputs, inputs, input_nodes)
        )
    return records


def _gradients(traced: tf_tape.Traced, fetched: list[Any]) -> list[Any]:
    """The fetched parts put back together: a tensor per variable, or the ``IndexedSlices`` of an
    embedding's rows, which Keras' optimizers apply to those rows only."""
    tf = common.require_tf()
    out, parts = [], iter(fetched)
    for gradient in traced.gradients:
        mine = [next(parts) for _ in tf_tape.gradient_parts(gradient)]
        out.append(tf.IndexedSlices(*mine) if len(mine) > 1 else mine[0])
    return out


def _run_update(
    traced: tf_tape.Traced, optimizer: Any, gradients: list[Any], records: list[Record], where: str
) -> None:
    """``optimizer.apply`` on the fetched gradients: one ``optimizer`` node per variable, its
    output the new value, with the update-to-weight ratio (|new - old| / |old|, Frobenius norms)."""
    tf = common.require_tf()
    graph, variables = traced.graph, traced.variables
    before = [tf.identity(v) for v in variables]
    applied = optimizer if optimizer.built else fresh_copy(optimizer, where)
    try:
        applied.apply(gradients, variables)
    except Exception as exc:
        raise GraphscopeError(
            f"{where}: the optimizer's update failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        ) from None
    by_node = {r.node: r for r in records}
    kind = type(optimizer).__name__
    for v, old, grad in zip(variables, before, traced.gradients):
        var_node = traced.variable_node(v)
        if var_node is None:
            continue
        grad_node = traced.ids[grad.op.name]
        new = tf.convert_to_tensor(v)
        weight = float(tf.norm(tf.cast(old, tf.float64)))
        update = float(tf.norm(tf.cast(new, tf.float64) - tf.cast(old, tf.float64)))
        node_id = _fresh_id(graph, f"{var_node}_update")
        graph.add_node(
            node_id,
            name=graph.node(var_node)["name"],
            op=f"optimizer:{kind}",
            canonical_op="optimizer_update",
            kind="op",
            scope=list(graph.node(var_node)["scope"]),
            outputs=[{"shape": list(new.shape), "dtype": new.dtype.name}],
            attrs={
                "update_to_weight": update / weight if weight > 0 else None,
                "update_norm": update,
                "weight_norm": weight,
            },
            phase="optimizer",
            grad_of=var_node,
        )
        graph.add_edge(var_node, node_id)
        graph.add_edge(grad_node, node_id, dst_port=1)
        inputs = [_summary(old), by_node[grad_node].summary if grad_node in by_node else None]
        records.append(
            Record(
                0,
                node_id,
                f"optimizer:{kind}",
                list(graph.node(node_id)["scope"]),
                None,
                [_summary(new)],
                inputs,
                [var_node, grad_node],
            )
        )


def fresh_copy(optimizer: Any, where: str) -> Any:
    """A copy of an optimizer not yet built (no state to carry), so that the user's stays unbuilt."""
    try:
        return type(optimizer).from_config(optimizer.get_config())
    except Exception as exc:
        raise GraphscopeError(
            f"{where}: the optimizer cannot be copied to take the step on ({type(exc).__name__}); "
            "build it first (optimizer.build(model.trainable_variables))"
        ) from None


def _fresh_id(graph: ir.Graph, base: str) -> str:
    node_id, i = base, 1
    while node_id in graph:
        node_id, i = f"{base}_{i}", i + 1
    return node_id


def _summary(tensor: Any) -> dict[str, Any]:
    """The summary of an eager tensor, reduced by TensorFlow (as the stepped graph's are)."""
    summary, _ = numerics.read_tf_summary(numerics.summarize_tf_graph(tensor).numpy(), tensor.dtype)
    summary["shape"] = list(tensor.shape)
    return summary
