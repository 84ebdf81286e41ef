"""TensorFlow: step a ``tf.function`` (``tf-function``) or a TF1 graph (``tf1``) in one run.

Every op's outputs are summarised *inside* the graph (:func:`numerics.summarize_tf_graph`, one
``DebugNumericSummary`` op per tensor) and only those small vectors are fetched, concatenated,
so memory stays close to a plain forward pass. The records' node ids are the IR node ids of the
same capture (``graphscope trace --method tf-function|tf1``).

- ``tf-function``: the concrete function's GraphDef (with its function library) is imported
  into a new function, the inputs mapped to its arguments and the captured variables to their
  handles; it returns the summaries instead of the model's outputs.
- ``tf1``: the GraphDef is imported into a fresh graph, its initializers are run as a user's
  session would, then one ``Session.run`` fetches the summaries.

Control flow: ``If``/``While`` bodies are functions and a TF1 while frame cannot be fetched
from outside, so loops and conditionals are stepped at their outputs (the calling op's, the
loop's ``Exit`` ops) and a note says so. TF1 ``Switch``/``Merge`` conds are evaluated: the
predicates are fetched first, and the ops of the branch not taken (dead tensors) did not run.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from typing import Any

from graphscope import ir
from graphscope.errors import GraphscopeError
from graphscope.stepping import numerics
from graphscope.stepping.records import Record, Steps
from graphscope.tracers import _tf_common as common

# Ops that write state or wait on the outside world: a step must not run them (nor what needs them).
_SIDE_EFFECTS = (
    "Assign",
    "Apply",
    "ResourceApply",
    "SparseApply",
    "ResourceSparseApply",
    "Scatter",
    "ResourceScatter",
    "Save",
    "Restore",
    "MergeV2Checkpoints",
    "Write",
    "Queue",
    "Reader",
    "Barrier",
    "Stage",
    "Unstage",
)
_INIT_OPS = frozenset({"Assign", "AssignVariableOp"})
_CALLS = {
    "While": "while loop",
    "StatelessWhile": "while loop",
    "If": "cond",
    "StatelessIf": "cond",
    "Case": "case",
    "StatelessCase": "case",
}
LIVE, DEAD, UNKNOWN = 0, 1, 2


def step(
    model: Any,
    example_inputs: Any,
    *,
    name: str,
    method: str = "tf-function",
    signature: Any = None,
    keep: frozenset[str] = frozenset(),
) -> Steps:
    common.require_tf()
    with common.tf_state_restored():
        if method == "tf1":
            return _step_tf1(model, example_inputs, name=name, keep=keep)
        return _step_function(model, example_inputs, name=name, signature=signature, keep=keep)


# -- tf.function ------------------------------------------------------------------------------


def _step_function(
    model: Any, example_inputs: Any, *, name: str, signature: Any, keep: frozenset[str]
) -> Steps:
    tf = common.require_tf()
    from graphscope.tracers import tf_function

    _, cf = tf_function.concrete_function(model, example_inputs, signature)
    graph, ids = tf_function.convert(cf, model, name)
    graph.validate()
    captured = {internal.op.name: external for external, internal in cf.graph.captures}
    params = [t for t in cf.graph.inputs if t.op.name not in captured]
    args = _function_arguments(params, example_inputs, name)
    graph_def = cf.graph.as_graph_def()
    layout: list[tuple[str, int, Any]] = []  # (node id, output port, dtype) of each summary
    tensors: list[tuple[str, Any]] = []
    kept: list[tuple[str, int]] = []
    wanted = [""]  # the summaries, then the tensors kept whole
    for op in cf.graph.get_operations():
        for port, t in enumerate(op.outputs):
            layout.append((ids[op.name], port, t.dtype))
            tensors.append((t.name, t.dtype))
            if ids[op.name] in keep and _holds_values(t.dtype):
                kept.append((ids[op.name], port))
                wanted.append(t.name)
    wanted[0] = _add_summaries(graph_def, tensors)[0]

    def run(*tensors: Any) -> Any:
        fg = tf.compat.v1.get_default_graph()
        input_map = {t.name: a for t, a in zip(params, tensors)}
        for op_name, external in captured.items():
            input_map[f"{op_name}:0"] = fg.capture(external)
        return tf.graph_util.import_graph_def(graph_def, input_map=input_map, return_elements=wanted, name="")

    specs = [tf.TensorSpec(t.shape, t.dtype) for t in params]
    try:
        wrapped = tf.compat.v1.wrap_function(run, specs)
    except Exception as exc:
        raise GraphscopeError(
            f"the graph of {name} cannot be rebuilt for stepping: {_first_line(exc)[:200]}"
        ) from None
    try:
        with _grappler_off():
            fetched = wrapped(*args)
    except Exception as exc:
        raise _run_error(exc, name, cf.graph) from None
    summaries = _read(fetched[0].numpy(), layout)
    values = _kept_values(kept, [t.numpy() for t in fetched[1:]])
    notes = _call_notes(graph)
    return _steps(graph, summaries, notes, values)


def _holds_values(dtype: Any) -> bool:
    """Can a tensor be kept whole as an array (not a resource handle or a variant)?"""
    return dtype.base_dtype.name not in ("resource", "variant")


@contextlib.contextmanager
def _grappler_off() -> Iterator[None]:
    """Grappler would rewrite the graph (fusing ops) before its one run, but every output is
    read by a summary, which leaves it little to fuse: on ResNet50 it only adds 1.5 s."""
    tf = common.require_tf()
    before = tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False)
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": before})


def _add_summaries(graph_def: Any, tensors: list[tuple[str, Any]], *, concat: bool = True) -> list[str]:
    """Add the summary of each ``(tensor name, dtype)`` to ``graph_def`` and, with ``concat``,
    one op concatenating them all: returns ``[that tensor's name]``, else the summaries' names."""
    import tensorflow as tf
    from tensorflow.core.framework import node_def_pb2

    taken = {n.name.split("/", 1)[0] for n in graph_def.node}
    prefix = "graphscope_summary"
    while prefix in taken:
        prefix += "_"
    nodes, names = numerics.summary_node_defs(tensors, prefix)
    graph_def.node.extend(nodes)
    if not concat:
        return names
    if not names:  # ConcatV2 takes at least one input: an empty vector instead
        empty = node_def_pb2.NodeDef(name=f"{prefix}/concat", op="Const")
        empty.attr["dtype"].type = tf.float64.as_datatype_enum
        empty.attr["value"].tensor.CopyFrom(tf.make_tensor_proto([], tf.float64))
        graph_def.node.append(empty)
        return [f"{empty.name}:0"]
    axis = node_def_pb2.NodeDef(name=f"{prefix}/concat/axis", op="Const")
    axis.attr["dtype"].type = tf.int32.as_datatype_enum
    axis.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(0, tf.int32))
    joined = node_def_pb2.NodeDef(name=f"{prefix}/concat", op="ConcatV2", input=[*names, axis.name])
    joined.attr["T"].type = tf.float64.as_datatype_enum
    joined.attr["N"].i = len(names)
    joined.attr["Tidx"].type = tf.int32.as_datatype_enum
    graph_def.node.extend([axis, joined])
    return [f"{joined.name}:0"]


def _function_arguments(params: list[Any], example_inputs: Any, name: str) -> list[Any]:
    """The example inputs as tensors for the concrete function's arguments, checked."""
    tf = common.require_tf()
    if example_inputs is None:
        if params:
            raise GraphscopeError(
                f"stepping {name} needs example_inputs in the model file: an input_signature "
                "gives shapes, not values to run"
            )
        return []
    flat = [x for x in tf.nest.flatten(tuple(example_inputs)) if hasattr(x, "shape")]
    if len(flat) != len(params):
        raise GraphscopeError(
            f"{name} takes {len(params)} tensor input(s), but example_inputs has {len(flat)}"
        )
    args = []
    for i, (param, x) in enumerate(zip(params, flat), 1):
        try:
            value = tf.convert_to_tensor(x)
            if value.dtype != param.dtype:
                value = tf.cast(value, param.dtype) if _safe_cast(value.dtype, param.dtype) else None
        except Exception:
            value = None
        if value is None:
            raise GraphscopeError(
                f"input {i} of {name} must be {param.dtype.name}; example_inputs gives "
                f"{getattr(getattr(x, 'dtype', None), 'name', type(x).__name__)}"
            )
        if not param.shape.is_compatible_with(value.shape):
            raise GraphscopeError(
                f"input {i} of {name} has shape {list(value.shape)}, but the model takes {_shape(param.shape)}"
            )
        args.append(value)
    return args


def _safe_cast(src: Any, dst: Any) -> bool:
    """Integers to floats and narrower to wider of one kind, as numpy's ``same_kind``."""
    import numpy as np

    try:
        return bool(np.can_cast(src.as_numpy_dtype, dst.as_numpy_dtype, casting="same_kind"))
    except TypeError:
        return False


# -- TF1 --------------------------------------------------------------------------------------


def _step_tf1(model: Any, example_inputs: Any, *, name: str, keep: frozenset[str]) -> Steps:
    tf = common.require_tf()
    from graphscope.tracers import tf1 as tf1_tracer

    graph_def = tf1_tracer.graph_def_of(model)
    graph = tf1_tracer.capture(graph_def, name=name)
    graph.validate()
    order = graph.order()
    notes = _call_notes(graph)
    inits, blocked = _plan(graph, order)
    if blocked:
        notes.append(
            f"{len(blocked)} op(s) that write state (assignments, checkpoints, queues) or need "
            "such ops were not run"
        )
    fed = _fed_inputs(graph, order, blocked)
    unfed = {i for i in graph.inputs if i not in fed and graph.node(i)["op"] != "PlaceholderWithDefault"}
    # What can be stepped: not initialization, not state writes, not inside a while frame.
    skipped_frames: dict[str, int] = {}
    candidates: list[tuple[str, int, Any]] = []
    for node_id in order:
        n = graph.node(node_id)
        if n["attrs"].get("initializer") or node_id in blocked or node_id in unfed:
            continue
        frame = n["attrs"].get("frame")
        if frame is not None and n["op"] not in ("Exit", "RefExit"):
            skipped_frames[frame] = skipped_frames.get(frame, 0) + 1
            continue
        for port, out in enumerate(n["outputs"]):
            try:
                candidates.append((node_id, port, tf.as_dtype(out["dtype"])))
            except TypeError:
                pass  # no dtype known: nothing to summarise
    steppable = type(graph_def)()
    steppable.CopyFrom(graph_def)  # the user's GraphDef stays as it was
    names = _add_summaries(steppable, [(f"{i}:{p}", d) for i, p, d in candidates], concat=False)
    summary_of = {(i, p): s for (i, p, _), s in zip(candidates, names)}
    tf_graph = tf.Graph()
    with tf_graph.as_default():
        tf.compat.v1.import_graph_def(steppable, name="")  # TF1 node ids are the op names
    feeds = _feeds([tf_graph.get_operation_by_name(i) for i in fed], example_inputs, name)
    config = tf.compat.v1.ConfigProto()
    config.graph_options.rewrite_options.disable_meta_optimizer = True  # see _grappler_off
    session = tf.compat.v1.Session(graph=tf_graph, config=config)
    try:
        _initialize(session, inits, name)
        state = _liveness(graph, order, session, feeds, name)
        layout: list[tuple[str, int, Any]] = []
        pieces, whole, kept = [], [], []
        for node_id, port, dtype in candidates:
            ports = state.get(node_id, [UNKNOWN])
            if ports[min(port, len(ports) - 1)] != LIVE:
                continue  # in a cond branch not taken
            pieces.append(tf_graph.get_tensor_by_name(summary_of[node_id, port]))
            layout.append((node_id, port, dtype))
            if node_id in keep and _holds_values(dtype):
                whole.append(tf_graph.get_tensor_by_name(f"{node_id}:{port}"))
                kept.append((node_id, port))
        with tf_graph.as_default():
            fetch = tf.concat(pieces, 0) if pieces else tf.zeros([0], tf.float64)
        try:
            fetched = session.run([fetch, *whole], feed_dict=feeds)
        except Exception as exc:
            raise _run_error(exc, name, tf_graph) from None
    finally:
        session.close()
    for frame, count in skipped_frames.items():
        loop = frame.removesuffix("/while_context")
        notes.append(
            f"values inside the while loop {loop!r} are not stepped ({count} ops): only its outputs (Exit ops)"
        )
    dead = [i for i, ports in state.items() if ports and LIVE not in ports and UNKNOWN not in ports]
    dead = [i for i in dead if "frame" not in graph.node(i)["attrs"]]
    if dead:
        notes.append(f"{len(dead)} op(s) in cond branches not taken on this input did not run")
    unknown = [i for i, ports in state.items() if UNKNOWN in ports]
    if unknown:
        notes.append(f"{len(unknown)} op(s) behind a cond whose predicate could not be computed were not run")
    summaries = _read(fetched[0], layout)
    return _steps(graph, summaries, notes, _kept_values(kept, list(fetched[1:])))


def _fed_inputs(graph: ir.Graph, order: list[str], blocked: set[str]) -> list[str]:
    """The placeholders the model reads, in graph order: not those only a ``Saver`` uses
    (its file name), nor those only state writes and training ops use."""
    fed: set[str] = set()
    for node_id in reversed(order):
        if graph.node(node_id)["kind"] != "input":
            continue
        for succ in graph.successors(node_id):
            n = graph.node(succ)
            if succ in fed or (
                succ not in blocked and n["kind"] != "input" and not n["attrs"].get("initializer")
            ):
                fed.add(node_id)
                break
    return [i for i in graph.inputs if i in fed]


def _feeds(inputs: list[Any], example_inputs: Any, name: str) -> dict[Any, Any]:
    """Placeholder tensor -> value: ``example_inputs`` in graph order (a ``PlaceholderWithDefault``
    may be left out when only the others are given)."""
    import numpy as np

    required = [op for op in inputs if op.type != "PlaceholderWithDefault"]
    given = list(example_inputs) if example_inputs is not None else []
    if len(given) == len(inputs):
        targets = inputs
    elif len(given) == len(required):
        targets = required
    else:
        listed = ", ".join(op.name for op in inputs)
        if not given:
            raise GraphscopeError(
                f"{name} has placeholders to feed ({listed}): define example_inputs in the model "
                "file, one array per placeholder in graph order"
            )
        raise GraphscopeError(
            f"{name} has {len(inputs)} placeholder(s) ({listed}), but example_inputs has {len(given)}"
        )
    feeds = {}
    for i, (op, x) in enumerate(zip(targets, given), 1):
        t = op.outputs[0]
        want = t.dtype.base_dtype
        try:
            value = np.asarray(x.numpy() if hasattr(x, "numpy") else x)
        except Exception:
            value = None
        if value is None or value.dtype.kind not in "biufcSUO":
            raise GraphscopeError(f"input {i} ({op.name}) is not an array: {type(x).__name__}")
        if value.dtype != want.as_numpy_dtype:
            if not np.can_cast(value.dtype, want.as_numpy_dtype, casting="same_kind"):
                raise GraphscopeError(f"input {i} ({op.name}) must be {want.name}, not {value.dtype}")
            value = value.astype(want.as_numpy_dtype)
        if not t.shape.is_compatible_with(value.shape):
            raise GraphscopeError(
                f"input {i} ({op.name}) has shape {list(value.shape)}, but the placeholder takes {_shape(t.shape)}"
            )
        feeds[t] = value
    return feeds


def _plan(graph: ir.Graph, order: list[str]) -> tuple[list[str], set[str]]:
    """The initializers to run, as ``global_variables_initializer`` would: assignments (and
    table initializations) whose values come from the graph alone, not from a feed, a checkpoint
    (a ``Saver``'s restore ops are assignments too) or another state write. And the ops not to
    run: every other state write, and everything that depends on one."""
    inits: list[str] = []
    blocked: set[str] = set()
    fed: set[str] = set()  # depends on a placeholder
    for node_id in order:
        n = graph.node(node_id)
        op = n["op"]
        preds = graph.predecessors(node_id)
        needs_feed = n["kind"] == "input" or any(p in fed for p in preds)
        after_write = any(p in blocked for p in preds)
        init = (op in _INIT_OPS and n["attrs"].get("initializer")) or op.startswith("InitializeTable")
        if init and not needs_feed and not after_write:
            inits.append(node_id)
            continue
        if needs_feed:
            fed.add(node_id)
        if after_write or op.startswith(_SIDE_EFFECTS):
            blocked.add(node_id)
    return inits, blocked


def _initialize(session: Any, inits: list[str], name: str) -> None:
    """Run the initializers :func:`_plan` found."""
    pending = [session.graph.get_operation_by_name(i) for i in inits]
    if not pending:
        return
    try:
        session.run(pending)
        return
    except Exception:
        pass  # an initial value reading another variable: one at a time, until none is left
    while pending:
        failed = []
        for op in pending:
            try:
                session.run(op)
            except Exception as exc:
                failed.append((op, exc))
        if len(failed) == len(pending):
            first, error = failed[0]
            raise GraphscopeError(
                f"the variables of {name} cannot be initialized: {first.name} failed with "
                f"{_first_line(error)[:200]}"
            )
        pending = [op for op, _ in failed]


def _liveness(
    graph: ir.Graph, order: list[str], session: Any, feeds: dict[Any, Any], name: str
) -> dict[str, list[int]]:
    """Which outputs are alive on this input: TF1 ``Switch`` ops (outside while frames) send a
    dead tensor down the branch not taken. Their predicates are fetched (scalars), nested
    conds' once their outer predicate is known, and deadness is propagated as the executor does."""
    edges: dict[str, list[ir.Edge]] = {}
    for e in graph.edges():
        edges.setdefault(e.dst, []).append(e)
    switches = [
        i
        for i in order
        if graph.node(i)["op"] in ("Switch", "RefSwitch") and "frame" not in graph.node(i)["attrs"]
    ]
    preds: dict[str, bool] = {}
    while True:
        state, base = _propagate(graph, order, edges, preds)
        ask: dict[str, str] = {}
        for sw in switches:
            if sw in preds or base.get(sw) != LIVE:
                continue
            pred = next((e for e in edges.get(sw, []) if e.dst_port == 1 and not e.control), None)
            if pred is not None:
                ask[sw] = f"{pred.src}:{pred.src_port}"
        if not ask:
            return state
        tensors = sorted(set(ask.values()))
        try:
            values = session.run([session.graph.get_tensor_by_name(t) for t in tensors], feed_dict=feeds)
        except Exception as exc:
            raise _run_error(exc, name, session.graph) from None
        known = {t: bool(v) for t, v in zip(tensors, values)}
        for sw, t in ask.items():
            preds[sw] = known[t]


def _propagate(
    graph: ir.Graph, order: list[str], edges: dict[str, list[ir.Edge]], preds: dict[str, bool]
) -> tuple[dict[str, list[int]], dict[str, int]]:
    state: dict[str, list[int]] = {}
    base: dict[str, int] = {}
    for node_id in order:
        n = graph.node(node_id)
        seen = []
        for e in edges.get(node_id, []):
            if e.src not in state:
                continue  # a loop's back edge
            ports = state[e.src]
            if e.control:
                seen.append((True, LIVE if LIVE in ports else min(ports, key=_severity)))
            else:
                seen.append((False, ports[min(max(e.src_port, 0), len(ports) - 1)]))
        if n["op"] in ("Merge", "RefMerge"):
            data = [s for control, s in seen if not control]
            s = LIVE if not data or LIVE in data else (UNKNOWN if UNKNOWN in data else DEAD)
        else:
            all_ = [s for _, s in seen]
            s = DEAD if DEAD in all_ else (UNKNOWN if UNKNOWN in all_ else LIVE)
        base[node_id] = s
        count = max(1, len(n["outputs"]))
        ports = [s] * count
        if n["op"] in ("Switch", "RefSwitch") and "frame" not in n["attrs"] and s == LIVE:
            taken = preds.get(node_id)
            ports = [UNKNOWN, UNKNOWN] if taken is None else ([DEAD, LIVE] if taken else [LIVE, DEAD])
        state[node_id] = ports
    return state, base


def _severity(s: int) -> int:
    return {DEAD: 0, UNKNOWN: 1, LIVE: 2}[s]


# -- shared -----------------------------------------------------------------------------------


def _read(values: Any, layout: list[tuple[str, int, Any]]) -> dict[str, dict[int, dict[str, Any]]]:
    """Node id -> output port -> summary, from the fetched vectors laid end to end."""
    out: dict[str, dict[int, dict[str, Any]]] = {}
    offset = 0
    for node_id, port, dtype in layout:
        summary, offset = numerics.read_tf_summary(values, dtype, offset)
        out.setdefault(node_id, {})[port] = summary
    return out


def _kept_values(kept: list[tuple[str, int]], arrays: list[Any]) -> dict[str, list[Any]]:
    values: dict[str, list[Any]] = {}
    for (node_id, port), array in zip(kept, arrays):
        outs = values.setdefault(node_id, [])
        outs.extend([None] * (port + 1 - len(outs)))
        outs[port] = array
    return values


def _steps(
    graph: ir.Graph,
    summaries: dict[str, dict[int, dict[str, Any]]],
    notes: Iterable[str],
    values: dict[str, list[Any]],
) -> Steps:
    """Records in the IR's execution order; the first non-finite one gets its inputs' summaries."""
    records: list[Record] = []
    culprit_found = False
    for node_id in graph.order():
        by_port = summaries.get(node_id)
        if by_port is None:
            continue
        n = graph.node(node_id)
        outputs = [by_port.get(p) for p in range(max(len(n["outputs"]), max(by_port) + 1))]
        rec = Record(len(records), node_id, n["op"], n["scope"], n["source"], outputs)
        if not culprit_found and not rec.finite:
            culprit_found = True
            data = sorted(
                (e for e in graph.edges() if e.dst == node_id and not e.control), key=lambda e: e.dst_port
            )
            rec.input_nodes = [e.src for e in data]
            rec.inputs = [summaries.get(e.src, {}).get(e.src_port) for e in data]
        records.append(rec)
    steps = Steps(graph, records, list(notes))
    steps.values = values
    return steps


def _call_notes(graph: ir.Graph) -> list[str]:
    notes = []
    for n in graph.nodes():
        if n["subgraphs"]:
            what = _CALLS.get(n["op"], "function call")
            notes.append(f"values inside the {what} {n['id']!r} are not stepped: only its outputs")
    return notes


def _shape(shape: Any) -> list[Any] | None:
    return None if shape.rank is None else shape.as_list()


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


_NOISE = re.compile(
    r"^(Graph execution error|Detected at node|<stack traces unavailable>|File \"|\[\[|\{\{|"
    r"defined at|Traceback|\w+Error: Graph execution error)"
)
_AT_NODE = re.compile(r"Detected at node '?([^'\s]+?)'? defined at|\{\{node ([^}]+)\}\}")


def _run_error(exc: BaseException, name: str, tf_graph: Any) -> GraphscopeError:
    """One sentence for an op that failed while running: its message, its node, the user's line."""
    text = getattr(exc, "message", None) or str(exc)
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    reason = next((ln for ln in lines if not _NOISE.match(ln)), _first_line(exc))
    reason = re.sub(r"\s*\[\[.*$", "", reason).strip() or type(exc).__name__
    node = None
    for match in _AT_NODE.finditer(str(text)):
        node = match.group(1) or match.group(2)
        break
    where = ""
    if node:
        where = f" at node {node!r}"
        try:
            source = common.source_of(tf_graph.get_operation_by_name(node))
        except Exception:
            source = None
        if source:
            where += f" ({source['file']}:{source['line']})"
    return GraphscopeError(f"{name} failed while running on its example inputs{where}: {reason[:240]}")
