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
