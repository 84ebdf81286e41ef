"""What the TensorFlow tracers share: a tf.Graph (or FuncGraph) -> IR, with the function
library as subgraphs, variables as params, shapes, name scopes and source lines; and leaving
TensorFlow's global state as it was found."""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Iterator
from typing import Any

from graphscope import ir
from graphscope.errors import GraphscopeError
from graphscope.tracers._source import is_user_file, relative

# Ops that only route values or order execution: TF1 control flow, and v2 control flow.
CONTROL_OPS = frozenset(
    {
        "Switch",
        "Merge",
        "Enter",
        "Exit",
        "NextIteration",
        "LoopCond",
        "RefSwitch",
        "RefMerge",
        "RefEnter",
        "RefExit",
        "RefNextIteration",
        "NoOp",
        "If",
        "StatelessIf",
        "While",
        "StatelessWhile",
        "Case",
        "StatelessCase",
        "ControlTrigger",
    }
)
VARIABLE_OPS = frozenset({"VariableV2", "Variable", "VarHandleOp"})
CONST_OPS = frozenset({"Const", "HostConst"})
INPUT_OPS = frozenset({"Placeholder", "PlaceholderV2", "PlaceholderWithDefault"})
# Attributes naming body functions, in the order they are listed on the node.
FUNCTION_ATTRS = ("then_branch", "else_branch", "cond", "body", "branches", "f")
SKIPPED_ATTRS = frozenset(
    {
        "_output_shapes",
        "_class",
        "_read_only_resource_inputs",
        "_has_manual_control_dependencies",
        "_kernel",  # the kernel label: inert() sets it on every node (a file's own is lost)
    }
)
# The kernel label no kernel is registered under (see inert()).
NO_KERNEL_LABEL = b"graphscope-read-as-data"


def require_tf() -> Any:
    from graphscope._tf_startup import import_tensorflow

    try:
        tf = import_tensorflow()  # its start-up banner kept off the user's terminal
    except ImportError:
        raise GraphscopeError(
            "capturing a TensorFlow model needs TensorFlow: pip install 'graphscope[tf]'"
        ) from None
    return tf


@contextlib.contextmanager
def tf_state_restored() -> Iterator[None]:
    """Capture must leave eager mode, the default graph and soft placement as they were."""
    tf = require_tf()
    eager = tf.executing_eagerly()
    soft = tf.config.get_soft_device_placement()
    try:
        yield
    finally:
        if tf.executing_eagerly() != eager:
            if eager:
                tf.compat.v1.enable_eager_execution()
            else:
                tf.compat.v1.disable_eager_execution()
        if tf.config.get_soft_device_placement() != soft:
            tf.config.set_soft_device_placement(soft)


def inert(graph_def: Any) -> Any:
    """A copy of ``graph_def`` that TensorFlow imports without running any of its ops.

    Importing a GraphDef infers every op's output shapes, and where a shape depends on a
    tensor's value (``Fill``'s dims, ``Reshape``'s shape) TensorFlow's shape refiner computes
    that value: it extracts the subgraph feeding it back to ``Const`` nodes and runs it on the
    CPU (``EvaluateConstantTensor`` in tensorflow/core/common_runtime/eval_const_tensor.cc). It
    runs any op not marked stateful that has a CPU kernel, and ``ReadFile``, ``DecodeRaw``,
    ``MatchingFiles`` or ``ParseTensor`` are not marked stateful: a file could read the user's
    files into its shapes, or hang the import on a FIFO. An op is evaluated only where
    ``KernelDefAvailable(DEVICE_CPU, node_def)`` finds a kernel, and that lookup matches the
    node's ``_kernel`` attribute (the kernel label) against each kernel's registered label: with
    a label no kernel has, on every node of the graph and of its function library, nothing is
    ever run. Shapes that only need shape metadata (``Shape``, ``Rank``, ``Size``, slices and
    packs of shapes) are still inferred; a shape that needed an op's value is left unknown."""
    inert_def = type(graph_def)()
    inert_def.CopyFrom(graph_def)
    for node in inert_def.node:
        node.attr["_kernel"].s = NO_KERNEL_LABEL
    for function in inert_def.library.function:
        for node in function.node_def:
            node.attr["_kernel"].s = NO_KERNEL_LABEL
    return inert_def


def refuse_recursion(graph_def: Any) -> None:
    """Refuse a function library in which a function calls itself, directly or through others
    (by any attribute naming a function: ``f``, ``then_branch``, ``body``...): TensorFlow has no
    recursion, and its import crashes (a segmentation fault) inferring such a call's shapes."""
    calls: dict[str, list[str]] = {}
    for function in graph_def.library.function:
        callees = calls.setdefault(function.signature.name, [])
        for node in function.node_def:
            for value in node.attr.values():  # every function-valued attribute, not only known ones
                if value.HasField("func"):
                    callees.append(value.func.name)
                elif value.HasField("list"):
                    callees.extend(f.name for f in value.list.func)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in calls:
        if state.get(start):
            continue
        state[start] = 1
        path, stack = [start], [iter(calls[start])]
        while stack:
            callee = next(stack[-1], None)
            if callee is None:
                state[path.pop()] = 2
                stack.pop()
                continue
            if state.get(callee) == 1:
                cycle = [*path[path.index(callee) :], callee]
                raise GraphscopeError(
                    "the GraphDef's function library is recursive ("
                    + " calls ".join(repr(n) for n in cycle[:6])
                    + (" ..." if len(cycle) > 6 else "")
                    + "): TensorFlow cannot run it, and its import would crash"
                )
            if callee in calls and not state.get(callee):
                state[callee] = 1
                path.append(callee)
                stack.append(iter(calls[callee]))


def _shape(tensor_shape: Any) -> list[Any] | None:
    if tensor_shape.rank is None:
        return None
    return [d for d in tensor_shape.as_list()]


def tensor_meta(tensor: Any) -> dict[str, Any]:
    return {"shape": _shape(tensor.shape), "dtype": tensor.dtype.name}


def _attr_value(value: Any) -> Any:
    """An ``AttrValue`` proto as plain JSON-ready data."""
    import tensorflow as tf

    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "list":
        items = value.list
        for field in ("s", "i", "f", "b", "type", "shape", "tensor", "func"):
            seq = getattr(items, field)
            if len(seq):
                return [_plain(tf.dtypes.as_dtype(v).name if field == "type" else v) for v in seq]
        return []
    if which == "type":
        try:
            return tf.dtypes.as_dtype(value.type).name
        except Exception:
            return str(value.type)
    return _plain(getattr(value, which))


def _plain(value: Any) -> Any:
    import tensorflow as tf
    from tensorflow.core.framework import attr_value_pb2, tensor_pb2, tensor_shape_pb2

    if isinstance(value, tf.dtypes.DType):
        return value.name
    if isinstance(value, tf.TensorShape):
        return _shape(value)
    if isinstance(value, tensor_shape_pb2.TensorShapeProto):
        return None if value.unknown_rank else [d.size if d.size >= 0 else None for d in value.dim]
    if isinstance(value, tensor_pb2.TensorProto):
        return _tensor_proto(value)  # a Const's value: small ones kept, others summarised
    if isinstance(value, attr_value_pb2.NameAttrList):
        return {"function": value.name}
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _tensor_proto(proto: Any) -> Any:
    """A tensor attribute: its values when it has at most 8, else its shape and dtype, read
    from the proto's declared shape (never expanded: a file may declare [40000, 40000] with
    one value, which MakeNdarray would fill out to 6.4 GB)."""
    import numpy as np
    from tensorflow.python.framework import tensor_util

    shape = proto.tensor_shape
    dims = [int(d.size) for d in shape.dim]
    if shape.unknown_rank or any(d < 0 for d in dims):
        return {"tensor": "unreadable"}
    if math.prod(dims) > 8:
        try:
            dtype = str(np.dtype(tensor_util.dtypes.as_dtype(proto.dtype).as_numpy_dtype))
        except Exception:
            return {"tensor": "unreadable"}
        return {"shape": dims, "dtype": dtype}  # as str(MakeNdarray(proto).dtype) would say
    try:
        array = tensor_util.MakeNdarray(proto)
    except Exception:
        return {"tensor": "unreadable"}
    return array.tolist()


def op_attrs(node_def: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for name in sorted(node_def.attr):
        if name in SKIPPED_ATTRS:
            continue
        attrs[name] = _attr_value(node_def.attr[name])
    return attrs


_GRAPHSCOPE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def source_of(op: Any) -> dict[str, Any] | None:
    """The innermost user frame of the op's creation traceback, where TensorFlow kept it."""
    try:
        stack = op.traceback
        # TensorFlow's own filter drops its internal frames in C++: far fewer to look at.
        frames = stack.get_user_frames() if hasattr(stack, "get_user_frames") else list(stack)
    except Exception:
        return None
    for i in range(len(frames) - 1, -1, -1):  # innermost first; stop at the first user frame
        filename = frames[i].filename
        if filename.startswith(_GRAPHSCOPE_DIR):
            return None  # past the model's code: what remains is graphscope's caller
        if is_user_file(filename):
            return {"file": relative(filename), "line": int(frames[i].lineno)}
    return None


def function_names(node_def: Any) -> list[tuple[str, str]]:
    """``(attribute, function name)`` of the library functions an op runs (If branches, While
    cond and body, calls), in attribute order."""
    names: list[tuple[str, str]] = []
    for attr in FUNCTION_ATTRS:
        if attr not in node_def.attr:
            continue
        value = node_def.attr[attr]
        if value.HasField("func"):
            names.append((attr, value.func.name))
        elif value.HasField("list"):
            names.extend((f"{attr}{i}", f.name) for i, f in enumerate(value.list.func))
    return names


_SUFFIX = re.compile(r"_\d+$")


class GraphConverter:
    """Converts a tf.Graph and the functions it calls into an IR graph with subgraphs.

    ``params``: op names (placeholders of captured variables) -> the variable's name.
    ``layer_names``: Keras layer names, to undo the ``_1`` suffixes Keras 3 adds to scopes.
    """

    def __init__(
        self,
        library: dict[str, Any],
        *,
        params: dict[str, str] | None = None,
        layer_names: set[str] | None = None,
    ) -> None:
        self.library = library  # function name -> FunctionDef
        self.params = params or {}
        self.layer_names = layer_names or set()
        # TensorFlow numbers library functions with a process-wide counter (cond_true_10):
        # the IR names each body after its first caller instead, so captures are reproducible.
        self.stable: dict[str, str] = {}
        self._stable_names: set[str] = set()
        # The top-level graph's op name -> IR node id (the stepper finds values by op name).
        self.ids: dict[str, str] = {}

    def node_id(self, name: str, g: ir.Graph) -> str:
        """The op's name with Keras 3's per-call scope suffixes undone (when that is unambiguous)."""
        if not self.layer_names or "/" not in name:
            return name
        cleaned = "/".join([*self.scope(name), name.rsplit("/", 1)[1]])
        return cleaned if cleaned not in g and cleaned not in self._taken else name

    def scope(self, name: str) -> list[str]:
        parts = name.split("/")[:-1]
        if not self.layer_names:
            return parts
        out = []
        for p in parts:
            base = _SUFFIX.sub("", p)
            out.append(base if p not in self.layer_names and base in self.layer_names else p)
        return out

    def convert(
        self,
        tf_graph: Any,
        g: ir.Graph,
        *,
        outputs: list[Any] | None = None,
        inputs: list[Any] | None = None,
        root: ir.Graph | None = None,
    ) -> None:
        root = root or g
        ops = tf_graph.get_operations()
        variables = {op.name for op in ops if op.type in VARIABLE_OPS} | set(self.params)
        ids: dict[str, str] = {}
        self._taken: set[str] = {op.name for op in ops}
        for op in ops:
            node_id = self.node_id(op.name, g)
            ids[op.name] = node_id
            self._taken.add(node_id)
            kind = self._kind(op, variables)
            canonical = {"param": "variable", "const": "const", "input": "placeholder"}.get(kind)
            subs = []
            node_def = op.node_def  # parsed from bytes on every access: once per op
            calls = function_names(node_def)
            attrs = op_attrs(node_def)
            for attr, fn_name in calls:
                stable = self.stable.get(fn_name) or self._unique_name(f"{node_id}.{attr}")
                self.stable[fn_name] = stable
                subs.append(stable)
                attrs[attr] = (
                    stable
                    if not isinstance(attrs.get(attr), list)
                    else [
                        self.stable.get(f.get("function", ""), f) if isinstance(f, dict) else f
                        for f in attrs[attr]
                    ]
                )
            variable = self.params.get(op.name)
            if variable is None and op.type == "ReadVariableOp" and op.inputs:
                source = op.inputs[0].op
                variable = self.params.get(source.name) or (
                    source.name if source.type in VARIABLE_OPS else None
                )
            g.add_node(
                node_id,
                name=variable or op.name,
                op=op.type,
                canonical_op=canonical,
                kind=kind,
                # A weight belongs where its variable lives (not in the scope that read it).
                scope=self.scope(variable + "/x") if variable else self.scope(op.name),
                outputs=[tensor_meta(t) for t in op.outputs],
                attrs=attrs,
                # Weights and constants are read where their consumer is: skip their stacks.
                source=source_of(op) if kind in ("op", "control", "input") else None,
                subgraphs=subs,
            )
            for _, fn_name in calls:
                self._convert_function(fn_name, root)
        if g is root:
            self.ids = ids
        for op in ops:
            for port, t in enumerate(op.inputs):
                g.add_edge(ids[t.op.name], ids[op.name], src_port=t.value_index, dst_port=port)
            for c in op.control_inputs:
                g.add_edge(ids[c.name], ids[op.name], src_port=-1, dst_port=-1, control=True)
        if inputs is not None:
            g.inputs = [
                ids[t.op.name]
                for t in inputs
                if t.op.name in ids and g.node(ids[t.op.name])["kind"] == "input"
            ]
        else:
            g.inputs = [ids[op.name] for op in ops if g.node(ids[op.name])["kind"] == "input"]
        if outputs is not None:
            g.outputs = list(dict.fromkeys(ids[t.op.name] for t in outputs))
        else:
            g.outputs = _sinks(g)

    def _unique_name(self, name: str) -> str:
        """``name``, or ``name_2``... when another function has it already: a call inside a
        body may have the same op name as its caller (a SavedModel's signature wrapper calls
        the function from a ``StatefulPartitionedCall``, as the top-level graph calls it)."""
        unique, i = name, 1
        while unique in self._stable_names:
            i += 1
            unique = f"{name}_{i}"
        self._stable_names.add(unique)
        return unique

    def _kind(self, op: Any, variables: set[str]) -> str:
        t = op.type
        if op.name in variables:
            return "param"
        if t == "ReadVariableOp" and op.inputs and op.inputs[0].op.name in variables:
            return "param"  # reading a weight: drawn and diffed as the weight
        if t in INPUT_OPS:
            return "input"
        if t in CONST_OPS:
            return "const"
        if t in CONTROL_OPS:
            return "control"
        return "op"

    def _convert_function(self, fn_name: str, root: ir.Graph) -> None:
        """Convert library function ``fn_name`` once, into ``root``'s subgraphs."""
        name = self.stable[fn_name]
        if name in root.subgraphs:
            return
        sub = ir.Graph(
            name, framework=root.framework, capture=root.capture, framework_version=root.framework_version
        )
        root.subgraphs[name] = sub
        if fn_name not in self.library:
            sub.notes.append("the function's definition is not in the graph's library")
            return
        from tensorflow.python.framework.function_def_to_graph import function_def_to_graph

        try:
            body = function_def_to_graph(self.library[fn_name])
        except Exception as exc:
            sub.notes.append(f"the function could not be imported for its shapes: {str(exc)[:200]}")
            return
        taken = self._taken
        self.convert(body, sub, inputs=list(body.inputs), outputs=list(body.outputs), root=root)
        self._taken = taken


def _sinks(g: ir.Graph) -> list[str]:
    """Nodes whose values nobody reads, except bookkeeping (initializers, NoOps, saving), and
    the unread ``Identity`` TensorFlow puts on every output of a control-flow v2 ``While``
    (``loop/Identity``: the loop counter, the iteration limit, a loop variable left unused)."""
    out = []
    for n in g.nodes():
        if n["kind"] != "op" or n["op"] in ("Assign", "AssignVariableOp", "AssignAddVariableOp"):
            continue
        if g.nx.out_degree(n["id"]) == 0 and n["outputs"] and not _loop_identity(g, n):
            out.append(n["id"])
    return out or [n["id"] for n in g.nodes() if _loop_identity(g, n) and not g.nx.out_degree(n["id"])]


def _loop_identity(g: ir.Graph, n: dict[str, Any]) -> bool:
    if n["op"] != "Identity":
        return False
    sources = list(g.nx.predecessors(n["id"]))
    return len(sources) == 1 and g.node(sources[0])["op"] in ("While", "StatelessWhile")
