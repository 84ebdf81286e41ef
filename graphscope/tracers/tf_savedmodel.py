"""A TensorFlow SavedModel read as data: its MetaGraphDef's GraphDef, never loaded.

``tf.saved_model.load`` runs the file's resource initialisers (TensorFlow functions that can
write files), so the static commands do not call it. The loader parses ``saved_model.pb``
into a :class:`SavedModelGraph`: the GraphDef of the ``serve`` MetaGraphDef (with its function
library) and the chosen signature's input and output tensors. Here the GraphDef is pruned to
what the signature's outputs depend on (the saver, the restore functions and the initialisers
are left out), imported into a ``tf.Graph`` (an inert copy: importing runs none of its ops, it
adds them and infers shapes; see ``_tf_common.inert``) and converted as the TF1 path converts a
GraphDef: the ``StatefulPartitionedCall`` to the signature's function becomes a subgraph, the
variables' ``VarHandleOp`` are params.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphscope import _gc, ir
from graphscope.errors import GraphscopeError, first_line
from graphscope.tracers import _tf_common as common


@dataclass
class SavedModelGraph:
    """What the loader read from ``saved_model.pb``: nothing in it has run."""

    graph_def: Any  # the MetaGraphDef's GraphDef, function library included
    signature_key: str
    inputs: list[str] = field(default_factory=list)  # tensor names ("serving_default_x:0")
    outputs: list[str] = field(default_factory=list)  # tensor names ("StatefulPartitionedCall:0")


def _op_name(tensor_name: str) -> str:
    return tensor_name.lstrip("^").split(":")[0]


def pruned(graph_def: Any, outputs: list[str], inputs: list[str] | None = None) -> Any:
    """A copy of ``graph_def`` with only the nodes ``outputs`` depend on (data and control),
    and the ``inputs`` (a signature input no output reads is still an input)."""
    tf = common.require_tf()
    by_name = {n.name: n for n in graph_def.node}
    missing = [o for o in outputs if _op_name(o) not in by_name]
    if missing:
        raise GraphscopeError(f"the signature's output {missing[0]} is not in the SavedModel's graph")
    keep: set[str] = set()
    stack = [_op_name(t) for t in [*outputs, *(inputs or [])]]
    while stack:
        name = stack.pop()
        if name in keep or name not in by_name:
            continue
        keep.add(name)
        stack.extend(_op_name(i) for i in by_name[name].input)
    out = tf.compat.v1.GraphDef()
    out.versions.CopyFrom(graph_def.versions)
    out.library.CopyFrom(graph_def.library)  # the converter reads only the functions called
    out.node.extend(n for n in graph_def.node if n.name in keep)
    return out


def capture(model: Any, example_inputs: Any = None, *, name: str, method: str = "savedmodel") -> ir.Graph:
    tf = common.require_tf()
    if not isinstance(model, SavedModelGraph):
        raise GraphscopeError(
            "the savedmodel method reads a SavedModel directory (saved_model.pb), "
            f"not a {type(model).__name__}"
        )
    # Importing the inert copy runs none of its ops (see _tf_common.inert).
    graph_def = common.inert(pruned(model.graph_def, model.outputs, model.inputs))
    common.refuse_recursion(graph_def)
    graph = tf.Graph()
    with common.tf_state_restored(), graph.as_default():
        try:
            tf.compat.v1.import_graph_def(graph_def, name="")
            inputs = [graph.get_tensor_by_name(t) for t in model.inputs]
            outputs = [graph.get_tensor_by_name(t) for t in model.outputs]
        except Exception as exc:
            raise GraphscopeError(f"the SavedModel's graph cannot be imported: {first_line(exc)}") from None
    library = {f.signature.name: f for f in graph_def.library.function}
    g = ir.Graph(
        name,
        framework="tf",
        capture="savedmodel",
        framework_version=tf.__version__,
        signature=[common.tensor_meta(t) for t in inputs],
    )
    # With the imported graph as the default one, a function's body finds the functions it
    # calls (the signature's wrapper calls the traced function) in that graph's library.
    with _gc.paused(), common.tf_state_restored(), graph.as_default():
        common.GraphConverter(library).convert(graph, g, inputs=inputs, outputs=outputs)
    g.notes.append(
        f"savedmodel: signature {model.signature_key!r}, read from saved_model.pb without loading "
        "it (nothing in the file ran)"
    )
    return g


# -- stepping inside the signature's function calls --------------------------------------------

_CALLS = frozenset({"PartitionedCall", "StatefulPartitionedCall"})


def calls_functions(cf: Any) -> bool:
    """Whether the concrete function's graph calls a function of its library (a SavedModel's
    signature is one ``StatefulPartitionedCall`` of the function it serves)."""
    return any(op.type in _CALLS for op in cf.graph.get_operations())


def inlined(cf: Any) -> Any:
    """A concrete function computing what ``cf`` computes, with every ``PartitionedCall`` and
    ``StatefulPartitionedCall`` replaced by the body of the function it calls (recursively), so
    that a stepper sees and summarises each op of the bodies. A body's ops are named below the
    call (``StatefulPartitionedCall/sequential/dense/MatMul``); the call itself becomes an
    ``IdentityN`` of the body's results, so that what read the call's outputs reads the same
    values. The captured variables stay captured: nothing is copied, nothing is run here.

    ``cf`` is a loaded SavedModel's signature (``graphscope step`` loaded it, which it was asked
    to do); reading a SavedModel as data (``trace``, ``tui``) never comes here."""
    tf = common.require_tf()
    graph_def = cf.graph.as_graph_def()
    library = {f.signature.name: f for f in graph_def.library.function}
    flat = tf.compat.v1.GraphDef()
    flat.versions.CopyFrom(graph_def.versions)
    flat.library.CopyFrom(graph_def.library)  # While/If bodies still call their functions
    captured = {internal.name: external for external, internal in cf.graph.captures}
    inputs = [t for t in cf.graph.inputs if t.name not in captured]
    fed = {t.op.name for t in inputs} | {name.split(":")[0] for name in captured}
    nodes: list[Any] = []
    _inline(graph_def.node, library, nodes, depth=0)
    flat.node.extend(n for n in nodes if n.name not in fed)  # fed through input_map below

    def imported(*args: Any) -> Any:
        g = tf.compat.v1.get_default_graph()
        input_map = {t.name: a for t, a in zip(inputs, args)}
        for name, external in captured.items():
            input_map[name] = g.capture(external, name=name.split(":")[0])
        return tf.graph_util.import_graph_def(
            flat, input_map=input_map, return_elements=[t.name for t in cf.outputs], name=""
        )

    specs = [tf.TensorSpec(t.shape, t.dtype, name=t.op.name) for t in inputs]
    try:
        return tf.compat.v1.wrap_function(imported, specs)
    except Exception as exc:
        raise GraphscopeError(
            f"the SavedModel's function calls cannot be inlined for stepping: {first_line(exc)}"
        ) from None


def _inline(nodes: Any, library: dict[str, Any], out: list[Any], *, depth: int) -> None:
    from tensorflow.python.framework import function_def_to_graph

    if depth > 64:
        raise GraphscopeError("the SavedModel's functions call each other more than 64 deep")
    for node in nodes:
        callee = node.attr["f"].func.name if node.op in _CALLS else ""
        if callee not in library:
            out.append(node)
            continue
        fdef = library[callee]
        body, nested_to_flat = function_def_to_graph.function_def_to_graph_def(fdef)
        prefix = node.name + "/"
        data_in = [i for i in node.input if not i.startswith("^")]
        args = {arg.name: data_in[k] for k, arg in enumerate(fdef.signature.input_arg)}
        inner = []
        for b in body.node:
            if b.name in args:  # the argument's placeholder: its readers read the call's input
                continue
            copy = type(b)()
            copy.CopyFrom(b)
            copy.name = prefix + b.name
            del copy.input[:]
            for ref in b.input:
                renamed = _renamed(ref, prefix, args)
                if renamed is not None:
                    copy.input.append(renamed)
            inner.append(copy)
        _inline(inner, library, out, depth=depth + 1)
        results = type(node)()
        results.name, results.op, results.device = node.name, "IdentityN", node.device
        results.input.extend(prefix + nested_to_flat[fdef.ret[arg.name]] for arg in fdef.signature.output_arg)
        results.input.extend(i for i in node.input if i.startswith("^"))
        results.attr["T"].CopyFrom(node.attr["Tout"])
        out.append(results)


def _renamed(ref: str, prefix: str, args: dict[str, str]) -> str | None:
    """A body's input reference in the caller's names: an argument is the call's input (a
    control edge from an argument is dropped: the input is there before the body runs)."""
    control = ref.startswith("^")
    name = ref.lstrip("^")
    op = name.partition(":")[0]
    if op in args:  # a placeholder has one output
        return None if control else args[op]
    return ("^" if control else "") + prefix + name
