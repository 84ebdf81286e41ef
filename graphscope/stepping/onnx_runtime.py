"""Stepping an ONNX model with onnxruntime: every intermediate value of its top-level graph.

onnxruntime returns only what the graph lists as outputs, so a copy of the model lists every
node's outputs too, and one run yields them all, summarised in the graph's order (ONNX keeps its
nodes sorted). Weights are summarised from the file's initializers; tensors whose data lives in
an external file are never read (see :mod:`graphscope.tracers.onnx_graph`), so they have no
summary. Values inside ``If`` / ``Loop`` bodies are not exposed by onnxruntime: the node that runs
a body shows its outputs.

An ONNX file holds no example inputs: ``step --inputs FILE.npz`` gives them, in the graph's
input order; without it, every input whose shape is fully declared gets random values (seed 0;
integers 0), and the steps' notes say so.
"""

from __future__ import annotations

from typing import Any

from graphscope import ir
from graphscope.errors import GraphscopeError, first_line
from graphscope.stepping.numerics import summarize_numpy
from graphscope.stepping.records import Record, Steps

__all__ = ["step"]


def step(
    model: Any,
    example_inputs: Any,
    *,
    name: str,
    method: str = "onnx",
    signature: Any = None,
    keep: frozenset[str] = frozenset(),
) -> Steps:
    import numpy as np

    from graphscope.tracers import onnx_graph

    try:
        import onnxruntime
    except ImportError:
        raise GraphscopeError("stepping ONNX needs onnxruntime: pip install 'graphscope[onnx]'") from None
    onnx = onnx_graph.require_onnx()
    if not isinstance(model, onnx.ModelProto):
        raise GraphscopeError("--fw onnx steps an .onnx file")
    graph = onnx_graph.capture(model, name=name)
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    notes: list[str] = []
    if example_inputs is None:
        example_inputs = _random_inputs(inputs)
        notes.append(
            "onnx: the file holds no example inputs; stepped on random ones (seed 0) made from the "
            "declared shapes (step --inputs FILE.npz to give yours)"
        )
    arrays = [np.asarray(v) for v in example_inputs]
    if len(arrays) != len(inputs):
        raise GraphscopeError(f"the ONNX model takes {len(inputs)} inputs, and {len(arrays)} were given")
    feeds = {i.name: a for i, a in zip(inputs, arrays, strict=True)}

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    listed = {o.name for o in probe.graph.output}
    produced = [o for node in probe.graph.node for o in node.output if o]
    probe.graph.output.extend(onnx.ValueInfoProto(name=o) for o in produced if o not in listed)
    wanted = [o.name for o in probe.graph.output]
    try:
        session = onnxruntime.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
        values = dict(zip(wanted, session.run(wanted, feeds), strict=True))
    except Exception as exc:
        raise GraphscopeError(f"onnxruntime cannot run the model: {first_line(exc)}") from None
    values.update(feeds)
    for init in model.graph.initializer:
        if not onnx_graph.has_external_data(init):  # a file outside the model: never read
            values[init.name] = onnx.numpy_helper.to_array(init)
    return _steps(graph, model, values, keep, notes)


def _random_inputs(inputs: list[Any]) -> list[Any]:
    import numpy as np
    from onnx import helper

    rng = np.random.default_rng(0)
    made = []
    for i in inputs:
        tensor = i.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        if not tensor.HasField("shape") or any(d is None for d in dims):
            raise GraphscopeError(
                f"the ONNX model's input {i.name!r} has no fixed shape: give the inputs with --inputs FILE.npz"
            )
        shape = [int(d) for d in dims if d is not None]
        dtype = helper.tensor_dtype_to_np_dtype(tensor.elem_type)
        if np.issubdtype(dtype, np.floating):
            made.append(rng.standard_normal(shape).astype(dtype))
        else:
            made.append(np.zeros(shape, dtype=dtype))
    return made


def _steps(
    graph: ir.Graph, model: Any, values: dict[str, Any], keep: frozenset[str], notes: list[str]
) -> Steps:
    """One record per node of the IR, in its order, each output and input summarised once."""
    summaries: dict[str, dict[str, Any] | None] = {}

    def summary(name: str) -> dict[str, Any] | None:
        if name not in summaries:
            value = values.get(name)
            summaries[name] = summarize_numpy(value) if value is not None else None
        return summaries[name]

    names = _value_names(graph, model)
    producer = {value: node_id for node_id, (outs, _) in names.items() for value in outs}
    records: list[Record] = []
    kept: dict[str, list[Any]] = {}
    for node_id in graph.nx:
        n = graph.node(node_id)
        if node_id not in names:
            continue
        outs, ins = names[node_id]
        is_op = n["kind"] in ("op", "control")
        rec = Record(
            index=len(records),
            node=node_id,
            op=n["op"],
            scope=list(n["scope"]),
            source=n["source"],
            outputs=[summary(o) for o in outs],
            inputs=[summary(i) for i in ins] if is_op else None,
            input_nodes=[producer.get(i, i) for i in ins] if is_op else [],
        )
        records.append(rec)
        if node_id in keep:
            kept[node_id] = [values[o] for o in outs if o in values]
    steps = Steps(graph, records, notes=notes)
    steps.values = kept
    return steps


def _value_names(graph: ir.Graph, model: Any) -> dict[str, tuple[list[str], list[str]]]:
    """IR node id -> (its ONNX output names, its ONNX input names), matched in graph order: the
    reader adds the initializers, then the inputs, then the nodes, each in the file's order."""
    ids = iter(graph.nx)
    out: dict[str, tuple[list[str], list[str]]] = {}
    initializers = {init.name for init in model.graph.initializer}
    for init in model.graph.initializer:
        out[next(ids)] = ([init.name], [])
    for i in model.graph.input:
        if i.name not in initializers:
            out[next(ids)] = ([i.name], [])
    for node in model.graph.node:
        out[next(ids)] = (list(node.output), [x for x in node.input if x])
    return out
