"""TF1: a GraphDef (or a ``tf.Graph``) as the Session would run it.

The GraphDef is imported into a fresh ``tf.Graph`` so that TensorFlow's shape inference fills
in every output shape. TF1 control flow is kept as it is: ``Switch``/``Merge`` conditionals and
``Enter``/``Exit``/``NextIteration``/``LoopCond`` while frames, the loop's back edge
(``NextIteration -> Merge``) kept as a cycle, and each op inside a while frame tagged with the
frame's name (``attrs.frame``).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from graphscope import _gc, ir
from graphscope.errors import GraphscopeError, first_line
from graphscope.tracers import _tf_common as common


def graph_def_of(model: Any) -> Any:
    """A GraphDef from a ``tf.Graph``, a GraphDef, or a function that builds a graph."""
    tf = common.require_tf()
    if isinstance(model, tf.compat.v1.GraphDef):
        return model
    if isinstance(model, tf.Graph):
        return model.as_graph_def()
    if callable(model):
        graph = tf.Graph()
        with common.tf_state_restored(), graph.as_default():
            try:
                result = model()
            except Exception as exc:
                raise GraphscopeError(
                    f"the TF1 graph-building function raised {type(exc).__name__}: {str(exc)[:200]}"
                ) from None
        return (result if isinstance(result, tf.Graph) else graph).as_graph_def()
    raise GraphscopeError(
        f"--fw tf1 needs a tf.Graph, a GraphDef or a function building one, not a {type(model).__name__}"
    )


def capture(model: Any, example_inputs: Any = None, *, name: str, method: str = "tf1") -> ir.Graph:
    tf = common.require_tf()
    graph_def = common.inert(graph_def_of(model))  # importing it runs none of its ops
    common.refuse_recursion(graph_def)
    graph = tf.Graph()
    with common.tf_state_restored(), graph.as_default():
        try:
            tf.compat.v1.import_graph_def(graph_def, name="")
        except Exception as exc:
            raise GraphscopeError(f"the GraphDef cannot be imported: {first_line(exc)}") from None
    library = {f.signature.name: f for f in graph_def.library.function}
    g = ir.Graph(name, framework="tf", capture="tf1", framework_version=tf.__version__)
    with _gc.paused():
        common.GraphConverter(library).convert(graph, g)
    _mark_frames(graph, g)
    _mark_initializers(g)
    g.outputs = [o for o in g.outputs if not g.node(o)["attrs"].get("initializer")]
    g.signature = [g.node(i)["outputs"][0] for i in g.inputs if g.node(i)["outputs"]]
    return g


def _mark_frames(tf_graph: Any, g: ir.Graph) -> None:
    """Tag ops inside each while frame: everything reachable from an ``Enter`` before ``Exit``."""
    enters = [op for op in tf_graph.get_operations() if op.type in ("Enter", "RefEnter")]
    if not enters:
        return
    frames: dict[str, list[str]] = {}
    for op in enters:
        frame = op.get_attr("frame_name").decode("utf-8", "backslashreplace")
        frames.setdefault(frame, []).append(op.name)
    for frame, starts in frames.items():
        seen = set(starts)
        queue = deque(starts)
        while queue:
            node = queue.popleft()
            g.node(node)["attrs"]["frame"] = frame
            if g.node(node)["op"] in ("Exit", "RefExit"):
                continue
            for succ in g.successors(node):
                if succ not in seen:
                    seen.add(succ)
                    queue.append(succ)
        g.notes.append(
            f"tf1: while frame {frame!r} has {len(seen)} ops; its back edge is NextIteration -> Merge"
        )


ASSIGN_OPS = frozenset(
    {
        "Assign",
        "AssignVariableOp",
        "AssignAdd",
        "AssignSub",
        "AssignAddVariableOp",
        "AssignSubVariableOp",
        "VarIsInitializedOp",
    }
)


def _mark_initializers(g: ir.Graph) -> None:
    """Variable initialisation (random draws feeding ``Assign``) is bookkeeping, not the model:
    those ops become ``control`` nodes, so views of the computation skip them."""
    init: set[str] = set()
    for node_id in reversed(g.order()):
        n = g.node(node_id)
        succ = g.successors(node_id)
        if n["op"] in ASSIGN_OPS or (n["kind"] in ("op", "const") and succ and all(s in init for s in succ)):
            init.add(node_id)
            n["attrs"]["initializer"] = True
            if n["kind"] == "op" or n["op"] in ASSIGN_OPS:
                n["kind"] = "control"
