"""TensorFlow: step a ``tf.function`` (``tf-function``) or a TF1 graph (``tf1``) in one run.

Every op's outputs are summarised *inside* the graph (:func:`numerics.summary_node_defs`: a
``DebugNumericSummary`` op per tensor, multi-threaded reductions for large float32 ones) and
only those small vectors are fetched, so memory stays close to a plain forward pass. An op of
:data:`_SAME_VALUES` (a reshape, an identity) gets its input's summary with its own shape. The
records' node ids are the IR node ids of the same capture (``graphscope trace --method
tf-function|tf1``).

- ``tf-function``: the model is traced once; the concrete function's FunctionDef gets the
  summary nodes, returns them instead of the model's outputs, and is run once with the example
  inputs and the captured variables. Each op waits for the summaries of its inputs, so that
  tensors are freed as early as in a plain call.
- ``tf1``: the GraphDef is imported into a fresh graph, its initializers are run as a user's
  session would, then one ``Session.run`` fetches the summaries.

Control flow: ``If``/``While`` bodies are functions and a TF1 while frame cannot be fetched
from outside, so loops and conditionals are stepped at their outputs (the calling op's, the
loop's ``Exit`` ops) and a note says so. TF1 ``Switch``/``Merge`` conds are evaluated: the
predicates are fetched first, and the ops of the branch not taken (dead tensors) did not run.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from typing import Any

from graphscope import _gc, ir
from graphscope.errors import GraphscopeError, first_line
from graphscope.stepping import numerics
from graphscope.stepping.records import InputKeeper, Record, Steps
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

# Ops whose output holds the values of their first input: their summary is that input's, with
# their own shape (as the PyTorch stepper does for views).
_SAME_VALUES = frozenset(
    {
        "Identity",
        "Snapshot",
        "StopGradient",
        "PreventGradient",
        "Reshape",
        "Squeeze",
        "ExpandDims",
        "EnsureShape",
    }
)
# TF1 control flow inside a function body: its dead tensors must not gate the model's ops.
_V1_CONTROL_FLOW = frozenset(
    {"Switch", "RefSwitch", "Merge", "RefMerge", "Enter", "RefEnter", "Exit", "RefExit", "NextIteration"}
)
_counter = itertools.count()


def _step_function(
    model: Any, example_inputs: Any, *, name: str, signature: Any, keep: frozenset[str]
) -> Steps:
    """One trace serves both the IR and the run: the concrete function's FunctionDef gets the
    summary nodes (and returns them instead of the model's outputs) and is run once. The IR is
    built after the run (when its memory is free again), unless values are kept: ``keep``
    names IR nodes."""
    from graphscope.tracers import tf_function, tf_savedmodel

    _, cf = tf_function.concrete_function(model, example_inputs, signature)
    if cf is model and tf_savedmodel.calls_functions(cf):
        # A SavedModel's signature calls the function it serves: step inside the call.
        cf = model = tf_savedmodel.inlined(cf)
    graph = ids = None
    kept: list[tuple[str, int]] = []
    if keep:
        graph, ids = tf_function.convert(cf, model, name)
        graph.validate()
        kept = [
            (op.name, port)
            for op in cf.graph.get_operations()
            if ids[op.name] in keep
            for port, t in enumerate(op.outputs)
            if _holds_values(t.dtype)
        ]
    run = run_summarised(
        cf, example_inputs, name, [cf.graph.get_operation_by_name(n).outputs[p] for n, p in kept]
    )
    if graph is None or ids is None:
        graph, ids = tf_function.convert(cf, model, name)
        graph.validate()
    summaries = {ids[op]: ports for op, ports in run.summaries.items()}
    kept_arrays = [t.numpy() for t in run.outputs]
    values = {ids[op]: arrays for op, arrays in _kept_values(kept, kept_arrays).items()}
    notes = _call_notes(graph)
    return _steps(graph, summaries, notes, values)


class Summarised:
    """What :func:`run_summarised` returns: op name -> output port -> summary, and the
    tensors asked for (eager tensors, in the order asked)."""

    def __init__(self, summaries: dict[str, dict[int, dict[str, Any]]], outputs: list[Any]) -> None:
        self.summaries, self.outputs = summaries, outputs


def run_summarised(cf: Any, example_inputs: Any, name: str, fetch: Sequence[Any] = ()) -> Summarised:
    """Run a concrete function once with a summary of every op's outputs: its FunctionDef gets
    the summary nodes and returns them instead of its outputs, plus the tensors of ``fetch``
    (tensors of ``cf.graph``, returned whole). Stateful ops (a variable's assignment) run as
    in a plain call."""
    tf = common.require_tf()
    from tensorflow.core.framework import function_pb2

    captured = {internal.op.name for _, internal in cf.graph.captures}
    params = [t for t in cf.graph.inputs if t.op.name not in captured]
    args = _function_arguments(params, example_inputs, name)
    fdef = function_pb2.FunctionDef()
    fdef.CopyFrom(cf.function_def)
    refs = _function_refs(cf, fdef)
    tensors: list[_Tensor] = []
    for op in cf.graph.get_operations():
        for port, t in enumerate(op.outputs):
            ref = refs.get(t.name)
            if ref is None:
                raise GraphscopeError(
                    f"the graph of {name} cannot be rebuilt for stepping: no output {t.name}"
                )
            source = None
            if port == 0 and op.type in _SAME_VALUES and op.inputs:
                source = (op.inputs[0].op.name, op.inputs[0].value_index)
            shape = t.shape.as_list() if t.shape.rank is not None else None
            tensors.append(_Tensor(op.name, port, t.dtype, shape, ref, source))
    fetch_refs = [(refs[t.name], t.dtype) for t in fetch]
    model_nodes = list(fdef.node_def)
    with _gc.paused():  # thousands of NodeDefs would trigger full collections
        plan = _Plan(tensors, _free_prefix(n.name for n in model_nodes), function=True)
        fdef.node_def.extend(plan.nodes)
    plan.nodes = []  # copied: the run does not need a second copy held
    if not any(n.op in _V1_CONTROL_FLOW for n in model_nodes):
        _wait_for_summaries(model_nodes, plan.done)
    del fdef.signature.output_arg[:]
    fdef.ret.clear()
    outputs = [
        (stream, ref, tf.as_dtype(numerics.TF_STREAMS[stream])) for stream, ref in plan.streams.items()
    ]
    outputs += [(f"kept_{i}", ref, dtype) for i, (ref, dtype) in enumerate(fetch_refs)]
    for out_name, ref, dtype in outputs:
        fdef.signature.output_arg.add(name=out_name, type=dtype.as_datatype_enum)
        fdef.ret[out_name] = ref
    for key in list(fdef.attr):
        if key.startswith(("_XlaMustCompile", "_jit_compile", "_noinline")):
            del fdef.attr[key]  # the summaries are not XLA ops
    try:
        function_name = _register(fdef)
    except Exception as exc:
        raise GraphscopeError(
            f"the graph of {name} cannot be rebuilt for stepping: {first_line(exc, 200)}"
        ) from None
    del fdef, model_nodes, refs  # TensorFlow holds its own copy
    try:
        fetched = _call(function_name, [*args, *cf.captured_inputs], len(outputs))
    except Exception as exc:
        raise _run_error(exc, name, cf.graph) from None
    streams = {stream: t.numpy() for stream, t in zip(plan.streams, fetched)}
    whole = list(fetched[len(plan.streams) :])
    del fetched
    return Summarised(plan.read(streams), whole)


def _function_refs(cf: Any, fdef: Any) -> dict[str, str]:
    """Tensor name (``op:port``) -> its name in the function body: an argument's name, or
    ``node:output_arg:index`` (a list output counts its elements)."""
    from tensorflow.python.framework import op_def_registry

    library: dict[str, Any] | None = None  # a call to a function of the graph's library
    refs = {t.name: arg.name for t, arg in zip(cf.graph.inputs, fdef.signature.input_arg)}
    for node in fdef.node_def:
        op_def = op_def_registry.get(node.op)
        if op_def is None:
            if library is None:
                with common.tf_state_restored():
                    functions = cf.graph.as_graph_def().library.function
                library = {f.signature.name: f.signature for f in functions}
            op_def = library.get(node.op)
        if op_def is None:
            continue
        port = 0
        for arg in op_def.output_arg:
            if arg.number_attr:
                count = node.attr[arg.number_attr].i
            elif arg.type_list_attr:
                count = len(node.attr[arg.type_list_attr].list.type)
            else:
                count = 1
            for index in range(count):
                refs[f"{node.name}:{port}"] = f"{node.name}:{arg.name}:{index}"
                port += 1
    return refs


def _register(fdef: Any) -> str:
    """Add a FunctionDef to the eager context under a new name, for :func:`_call`."""
    from tensorflow.python.eager import context

    fdef.signature.name = f"graphscope_step_{next(_counter)}"
    context.context().add_function_def(fdef)
    return str(fdef.signature.name)


def _call(name: str, inputs: list[Any], num_outputs: int) -> list[Any]:
    """Run a registered function once (and remove it), eagerly, without Grappler nor the graph
    optimizer (L0): every output is read by a summary, which leaves little to fuse, and on
    ResNet50 at batch 8 it made the step 4 s slower."""
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.eager import context, execute

    ctx = context.context()
    options = ctx.function_call_options
    config = config_pb2.ConfigProto()
    config.ParseFromString(options.config_proto_serialized)
    config.graph_options.rewrite_options.disable_meta_optimizer = True
    config.graph_options.optimizer_options.opt_level = config_pb2.OptimizerOptions.L0
    attrs = ("executor_type", options.executor_type or "", "config_proto", config.SerializeToString())
    try:
        return list(execute.execute(name, num_outputs, inputs, attrs, ctx))
    finally:
        ctx.remove_function(name)


def _wait_for_summaries(nodes: list[Any], done: dict[str, list[str]]) -> None:
    """Make each op wait for the summaries of the tensors it reads: a tensor is then freed (or
    updated in place by the op) as in a plain call, instead of waiting for its summaries while
    the model runs ahead (on ResNet50 at batch 8 the peak memory was 70 MB higher)."""
    for node in nodes:
        waits: dict[str, None] = {}
        for ref in node.input:
            if not ref.startswith("^"):
                waits.update(dict.fromkeys(done.get(ref, [])))
        node.input.extend(f"^{w}" for w in waits)


def _holds_values(dtype: Any) -> bool:
    """Can a tensor be kept whole as an array (not a resource handle or a variant)?"""
    return dtype.base_dtype.name not in ("resource", "variant")


def _free_prefix(names: Iterable[str]) -> str:
    """A node name scope that no node of the graph uses."""
    taken = {n.split("/", 1)[0] for n in names}
    prefix = "graphscope_summary"
    while prefix in taken:
        prefix += "_"
    return prefix


class _Tensor:
    """A tensor to summarise: node (its op's name) and port, dtype, static shape, its name in
    the graph being stepped, and for an op of :data:`_SAME_VALUES` the (node, port) of its input."""

    __slots__ = ("dtype", "node", "port", "ref", "shape", "source")

    def __init__(
        self,
        node: str,
        port: int,
        dtype: Any,
        shape: list[Any] | None,
        ref: str,
        source: tuple[str, int] | None,
    ) -> None:
        self.node, self.port, self.dtype, self.shape, self.ref, self.source = (
            node,
            port,
            dtype,
            shape,
            ref,
            source,
        )


class _Plan:
    """The summary nodes of ``tensors`` (in an order where inputs come first): a tensor of
    :data:`_SAME_VALUES` whose input is summarised with stats gets no nodes of its own."""

    def __init__(self, tensors: list[_Tensor], prefix: str, *, function: bool) -> None:
        self.tensors = tensors
        self.own: list[int | None] = []  # per tensor: the index of its summary, None for a copy
        self.root: list[int] = []  # per tensor: the tensor whose summary it has (itself, or an input)
        with_stats: dict[tuple[str, int], int] = {}  # (node id, port) -> its tensor's root
        specs: list[tuple[str, Any, list[Any] | None]] = []
        for i, t in enumerate(tensors):
            root = with_stats.get(t.source) if t.source is not None else None
            if root is not None and tensors[root].dtype.base_dtype == t.dtype.base_dtype and _known(t.shape):
                self.own.append(None)
            else:
                root = i
                self.own.append(len(specs))
                specs.append((t.ref, t.dtype, t.shape))
            self.root.append(root)
            if numerics.tf_has_stats(t.dtype):
                with_stats[t.node, t.port] = root
        self.nodes, self.summaries, self.streams = numerics.summary_node_defs(
            specs, prefix, function=function, concat=function
        )
        self.done: dict[str, list[str]] = {}
        for t, index in zip(tensors, self.own):
            if index is not None and self.summaries[index].done:
                self.done[t.ref] = self.summaries[index].done

    def read(
        self, streams: dict[str, Any], live: set[int] | None = None
    ) -> dict[str, dict[int, dict[str, Any]]]:
        """Node id -> output port -> summary, from the fetched streams; with ``live``, only
        the tensors of those indices were fetched (and their copies)."""
        fetched = [
            (i, index)
            for i, index in enumerate(self.own)
            if index is not None and (live is None or i in live)
        ]
        values = numerics.read_tf_summaries(streams, [self.summaries[index] for _, index in fetched])
        by_tensor = {i: summary for (i, _), summary in zip(fetched, values)}
        out: dict[str, dict[int, dict[str, Any]]] = {}
        for i, t in enumerate(self.tensors):
            summary = by_tensor.get(self.root[i])
            if summary is None or (live is not None and i not in live):
                continue
            if self.own[i] is None:
                summary = {**summary, "shape": list(t.shape or []), "dtype": t.dtype.base_dtype.name}
            out.setdefault(t.node, {})[t.port] = summary
        return out


def _known(shape: list[Any] | None) -> bool:
    return shape is not None and all(isinstance(d, int) for d in shape)


def _function_arguments(params: list[Any], example_inputs: Any, name: str) -> list[Any]:
    """The example inputs as tensors for the concrete function's arguments, checked."""
    tf = common.require_tf()
    if example_inputs is None:
        if params:
            raise GraphscopeError(
                f"stepping {name} needs input values: example_inputs in the model file, or "
                "--inputs FILE.npz (an input_signature gives shapes, not values to run)"
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
    first_input = {(e.dst, e.dst_port): (e.src, e.src_port) for e in graph.edges() if not e.control}
    candidates: list[_Tensor] = []
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
                dtype = tf.as_dtype(out["dtype"])
            except TypeError:
                continue  # no dtype known: nothing to summarise
            source = first_input.get((node_id, 0)) if port == 0 and n["op"] in _SAME_VALUES else None
            candidates.append(_Tensor(node_id, port, dtype, out.get("shape"), f"{node_id}:{port}", source))
    steppable = type(graph_def)()
    steppable.CopyFrom(graph_def)  # the user's GraphDef stays as it was
    with _gc.paused():
        plan = _Plan(candidates, _free_prefix(n.name for n in steppable.node), function=False)
        steppable.node.extend(plan.nodes)
    tf_graph = tf.Graph()
    with tf_graph.as_default():
        tf.compat.v1.import_graph_def(steppable, name="")  # TF1 node ids are the op names
    feeds = _feeds([tf_graph.get_operation_by_name(i) for i in fed], example_inputs, name)
    config = tf.compat.v1.ConfigProto()
    config.graph_options.rewrite_options.disable_meta_optimizer = True  # as _call does
    session = tf.compat.v1.Session(graph=tf_graph, config=config)
    try:
        _initialize(session, inits, name)
        state = _liveness(graph, order, session, feeds, name)
        live: set[int] = set()
        pieces: dict[str, list[Any]] = {stream: [] for stream in numerics.TF_STREAMS}
        whole, kept = [], []
        for i, t in enumerate(candidates):
            ports = state.get(t.node, [UNKNOWN])
            if ports[min(t.port, len(ports) - 1)] != LIVE:
                continue  # in a cond branch not taken
            live.add(i)
            own = plan.own[i]
            if own is not None:
                for stream, names in plan.summaries[own].pieces.items():
                    pieces[stream].extend(tf_graph.get_tensor_by_name(piece) for piece in names)
            if t.node in keep and _holds_values(t.dtype):
                whole.append(tf_graph.get_tensor_by_name(t.ref))
                kept.append((t.node, t.port))
        with tf_graph.as_default():
            fetch = [
                (tf.stack if stream == "fast" else tf.concat)(pieces[stream], 0)
                if pieces[stream]
                else tf.zeros([0], dtype)
                for stream, dtype in numerics.TF_STREAMS.items()
            ]
        try:
            fetched = session.run([*fetch, *whole], feed_dict=feeds)
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
    summaries = plan.read(dict(zip(numerics.TF_STREAMS, fetched)), live)
    return _steps(graph, summaries, notes, _kept_values(kept, list(fetched[len(fetch) :])))


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
                "file, or give --inputs FILE.npz, one array per placeholder in graph order"
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
                f"{first_line(error, 200)}"
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
    """Records in the IR's execution order; the non-finite ones get their inputs' summaries
    (:class:`InputKeeper`)."""
    records: list[Record] = []
    keeps_inputs = InputKeeper()
    for node_id in graph.order():
        by_port = summaries.get(node_id)
        if by_port is None:
            continue
        n = graph.node(node_id)
        outputs = [by_port.get(p) for p in range(max(len(n["outputs"]), max(by_port) + 1))]
        rec = Record(len(records), node_id, n["op"], n["scope"], n["source"], outputs)
        if keeps_inputs(outputs):
            # The node's own edges (a mask's -inf makes several records keep inputs: no pass
            # over every edge of the graph for each).
            data = sorted(
                (attrs["dst_port"], src, attrs["src_port"])
                for src, keys in graph.nx._pred[node_id].items()
                for attrs in keys.values()
                if not attrs["control"]
            )
            rec.input_nodes = [src for _, src, _ in data]
            rec.inputs = [summaries.get(src, {}).get(port) for _, src, port in data]
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


_NOISE = re.compile(
    r"^(Graph execution error|Detected at node|<stack traces unavailable>|File \"|\[\[|\{\{|"
    r"defined at|Traceback|\w+Error: Graph execution error)"
)
_AT_NODE = re.compile(r"Detected at node '?([^'\s]+?)'? defined at|\{\{node ([^}]+)\}\}")


def _run_error(exc: BaseException, name: str, tf_graph: Any) -> GraphscopeError:
    """One sentence for an op that failed while running: its message, its node, the user's line."""
    text = getattr(exc, "message", None) or str(exc)
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    reason = next((ln for ln in lines if not _NOISE.match(ln)), first_line(exc, None))
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
