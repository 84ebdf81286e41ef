"""ONNX: a ModelProto (an ``.onnx`` file, or a TensorFlow model converted by ``tf2onnx``).

Shapes come from ONNX's own shape inference. Initializers are ``param`` nodes; graph inputs
that are not initializers are ``input`` nodes; ``If`` / ``Loop`` / ``Scan`` bodies (graph-valued
attributes) become subgraphs named ``<node>.<attribute>``.

A tensor whose data the file keeps outside itself (``data_location: EXTERNAL``, a path in
``external_data``) is never resolved: no file but the ``.onnx`` is read, whatever the path says
(relative, absolute, ``..``, a link). Its shape and dtype are recorded, and a note says so.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from graphscope import _gc, ir
from graphscope.errors import GraphscopeError, first_line


def require_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise GraphscopeError("reading ONNX needs the onnx package: pip install 'graphscope[onnx]'") from None
    return onnx


def load_model(path: Path) -> Any:
    """Read an ``.onnx`` file (protobuf, never pickle); damaged files get one sentence."""
    onnx = require_onnx()
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise GraphscopeError(f"{path} is not a readable ONNX model: {first_line(exc)}") from None
    if not model.graph.node and not model.graph.input:
        raise GraphscopeError(f"{path} is not a readable ONNX model: it has no graph")
    return model


def capture(model: Any, example_inputs: Any = None, *, name: str, method: str = "onnx") -> ir.Graph:
    onnx = require_onnx()
    if isinstance(model, (str, Path)):
        model = load_model(Path(model))
    elif not isinstance(model, onnx.ModelProto):
        from graphscope.tracers import tf_onnx

        model = tf_onnx.convert(model, example_inputs)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False)
    except Exception:
        inferred = model  # shapes stay as the file declares them
    opset = ",".join(f"{o.domain or 'ai.onnx'}:{o.version}" for o in model.opset_import)
    g = ir.Graph(
        name, framework="onnx", capture="onnx", framework_version=f"onnx {onnx.__version__}; opset {opset}"
    )
    with _gc.paused():
        try:
            _convert(inferred.graph, g, root=g, prefix="")
        except (ValueError, TypeError, KeyError, IndexError, RecursionError) as exc:
            # A file that parses as a ModelProto can still hold nonsense (an attribute of an
            # unknown type, a tensor whose data does not match its dims).
            detail = f"{type(exc).__name__}: {first_line(exc)}"
            raise GraphscopeError(f"the ONNX model is malformed and cannot be read: {detail}") from None
    external = _count_external(model.graph)
    if external:
        g.notes.append(
            f"onnx: {external} tensor(s) keep their data in files outside the model; graphscope "
            "records their shape and dtype and reads no file but the .onnx"
        )
    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p and p != "None")
    producer = producer.replace(" None", "")
    if producer:
        g.notes.append(f"onnx: produced by {producer}")
    return g


def _value_infos(graph: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for vi in [*graph.input, *graph.output, *graph.value_info]:
        out[vi.name] = _type_meta(vi.type)
    return out


def _type_meta(t: Any) -> dict[str, Any]:

    if not t.HasField("tensor_type"):
        return {"shape": None, "dtype": t.WhichOneof("value")}
    tt = t.tensor_type
    dtype = _dtype_name(tt.elem_type) if tt.elem_type else None
    if not tt.HasField("shape"):
        return {"shape": None, "dtype": dtype}
    dims: list[Any] = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return {"shape": dims, "dtype": dtype}


def _dtype_name(elem_type: int) -> str:
    """numpy's name for an ONNX element type; ``onnx:37`` for a type this onnx does not know
    (a newer opset's, or a damaged file's)."""
    from onnx import helper

    try:
        return str(helper.tensor_dtype_to_np_dtype(elem_type).name)
    except (KeyError, ValueError, TypeError):
        return f"onnx:{elem_type}"


def has_external_data(tensor: Any) -> bool:
    from onnx import TensorProto

    return bool(tensor.data_location == TensorProto.EXTERNAL or len(tensor.external_data))


def _tensor_value(tensor: Any) -> Any:
    """A tensor attribute's value: small ones in full, others (and any whose data is in an
    external file, which is never read) as shape and dtype."""
    from onnx import numpy_helper

    if has_external_data(tensor):
        return {
            "shape": list(tensor.dims),
            "dtype": _dtype_name(tensor.data_type),
            "data": "external, not read",
        }
    array = numpy_helper.to_array(tensor)
    return array.tolist() if array.size <= 8 else {"shape": list(array.shape), "dtype": array.dtype.name}


def _size_value(tensor: Any) -> dict[str, Any]:
    """A small integer initializer is a size, not a weight (a Reshape's target, axes, pads): its
    value, which tf2onnx bakes the batch into (check-dynamic lists it). Weights stay out."""
    from onnx import TensorProto

    integer = (TensorProto.INT64, TensorProto.INT32, TensorProto.INT16, TensorProto.INT8, TensorProto.UINT8)
    count = 1
    for d in tensor.dims:
        count *= d
    if tensor.data_type not in integer or count > 8 or has_external_data(tensor):
        return {}
    return {"value": _tensor_value(tensor)}


def _count_external(graph: Any) -> int:
    """Tensors in ``graph`` (initializers, tensor attributes, bodies) whose data is external."""
    count = sum(has_external_data(t) for t in graph.initializer)
    count += sum(has_external_data(t.values) for t in graph.sparse_initializer)
    for node in graph.node:
        for a in node.attribute:
            count += has_external_data(a.t) + sum(has_external_data(t) for t in a.tensors)
            count += sum(_count_external(sub) for sub in [a.g, *a.graphs])
    return count


def _attrs(node: Any) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    from onnx import helper

    attrs: dict[str, Any] = {}
    bodies: list[tuple[str, Any]] = []
    for a in node.attribute:
        if a.type == a.GRAPH:
            bodies.append((a.name, a.g))
            continue
        if a.type == a.GRAPHS:
            bodies.extend((f"{a.name}{i}", sub) for i, sub in enumerate(a.graphs))
            continue
        if a.type == a.TENSOR:
            attrs[a.name] = _tensor_value(a.t)
            continue
        if a.type == a.TENSORS:
            attrs[a.name] = [_tensor_value(t) for t in a.tensors]
            continue
        value = helper.get_attribute_value(a)
        attrs[a.name] = value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value
    order = {"then_branch": 0, "else_branch": 1, "cond": 2, "body": 3}
    bodies.sort(key=lambda b: (order.get(b[0], 9), b[0]))  # If: then before else, as written
    return attrs, bodies


def _convert(graph: Any, g: ir.Graph, *, root: ir.Graph, prefix: str) -> None:
    infos = _value_infos(graph)
    producers: dict[str, tuple[str, int]] = {}
    initializers = {init.name: init for init in graph.initializer}

    for init in graph.initializer:
        node_id = f"{prefix}{init.name}"
        g.add_node(
            node_id,
            name=init.name,
            op="Initializer",
            canonical_op="variable",
            kind="param",
            scope=_weight_scope(init.name),
            outputs=[{"shape": list(init.dims), "dtype": _dtype_name(init.data_type)}],
            attrs=_size_value(init),
        )
        producers[init.name] = (node_id, 0)
    for inp in graph.input:
        if inp.name in initializers:
            continue
        node_id = f"{prefix}{inp.name}"
        g.add_node(
            node_id,
            name=inp.name,
            op="Input",
            canonical_op="placeholder",
            kind="input",
            outputs=[infos.get(inp.name, {"shape": None, "dtype": None})],
        )
        producers[inp.name] = (node_id, 0)
        g.inputs.append(node_id)
    used: set[str] = set()
    last: dict[str, int] = {}  # name -> the number its latest namesake got
    for i, node in enumerate(graph.node):
        # Converters number the nodes they make with a process-wide counter (tf2onnx's
        # "MatMul_Gemm__7"): drop it, so the same model always gives the same ids.
        base = f"{prefix}{_GENERATED.sub('', node.name) or f'{node.op_type}_{i}'}"
        # Namesakes are numbered from where the last one stopped (linear: trying "name_",
        # "name__"... from the start was cubic, 65 s for 10,000 nodes of one name).
        node_id, number = base, last.get(base, 1)
        while node_id in g or node_id in used:
            number += 1
            node_id = f"{base}_{number}"
        last[base] = number
        used.add(node_id)
        attrs, bodies = _attrs(node)
        op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"
        sub_names = [f"{node_id}.{attr}" for attr, _ in bodies]
        kind = (
            "control"
            if node.op_type in ("If", "Loop", "Scan")
            else ("const" if node.op_type == "Constant" else "op")
        )
        g.add_node(
            node_id,
            name=node.name or node_id,
            op=op,
            kind=kind,
            scope=_module_scope(node) or _scope(node.name),
            outputs=[infos.get(o, {"shape": None, "dtype": None}) for o in node.output],
            attrs=attrs,
            subgraphs=sub_names,
            source=_source(node),
        )
        for port, value in enumerate(node.input):
            if value and value in producers:
                src, src_port = producers[value]
                g.add_edge(src, node_id, src_port=src_port, dst_port=port)
        for port, value in enumerate(node.output):
            if value:
                producers[value] = (node_id, port)
        for sub_name, (_, body) in zip(sub_names, bodies):
            sub = ir.Graph(
                sub_name,
                framework=root.framework,
                capture=root.capture,
                framework_version=root.framework_version,
            )
            _convert(body, sub, root=root, prefix="")
            g.subgraphs[sub_name] = sub
    g.outputs = list(dict.fromkeys(producers[o.name][0] for o in graph.output if o.name in producers))


_GENERATED = re.compile(r"__\d+$")


def _metadata(node: Any, key: str) -> str | None:
    for prop in node.metadata_props:
        if prop.key == key:
            return str(prop.value)
    return None


def _module_scope(node: Any) -> list[str]:
    """The module path torch.onnx's dynamo exporter records in a node's ``namespace``
    (``: __main__.M/block: __main__.B/block.fc: torch.nn.modules.linear.Linear/linear: ...``,
    each step ``path: class``, the node's own last): ``["block", "fc"]``."""
    namespace = _metadata(node, "namespace")
    if not namespace or len(namespace) > 10_000:
        return []
    steps = namespace.split("/")
    if len(steps) < 2:
        return []
    path = steps[-2].split(":", 1)[0].strip()
    return [p for p in path.split(".") if p]


def _source(node: Any) -> dict[str, Any] | None:
    """The user's line from the exporter's ``pkg.torch.onnx.stack_trace``: read as text."""
    trace = _metadata(node, "pkg.torch.onnx.stack_trace")
    if not trace or len(trace) > 100_000:
        return None
    from graphscope.tracers._torch_common import source_from_stack

    return source_from_stack(trace)


def _weight_scope(name: str) -> list[str]:
    """``dense/kernel:0`` (tf2onnx) -> ``["dense"]``; ``block.fc.weight`` (torch.onnx, both
    exporters: the module path) -> ``["block", "fc"]``."""
    if "/" not in name and "." in name:
        return [p for p in name.split(".")[:-1] if p]
    return _scope(name)


def _scope(name: str) -> list[str]:
    """tf2onnx keeps TensorFlow's name scopes (``sequential/dense/MatMul``): use them."""
    return [p for p in name.split("/")[:-1] if p]
