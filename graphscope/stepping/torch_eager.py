"""PyTorch eager: the ATen ops as they actually ran on this input, recorded with a TorchDispatchMode.

No tracing is involved, so this works on any model that runs, including data-dependent
control flow that no static capture handles: the graph is the path this input took. Each op's
inputs are found by tensor identity (a weak map from every tensor an op returned to the node
that returned it, so tensors are freed as the model frees them); parameters and buffers are
named from the module; module hooks give each op its module scope; the nearest user frame on
the stack (else a model library's, such as transformers' modeling_gpt2.py) gives its source line.

The same recorder, without summaries, is the capture method ``eager``.
"""

from __future__ import annotations

import inspect
import math
import os
import sys
import weakref
from typing import Any

from graphscope import ir
from graphscope.errors import GraphscopeError
from graphscope.stepping import numerics
from graphscope.stepping.records import InputKeeper, Record, Steps
from graphscope.tracers import _torch_common as common
from graphscope.tracers._source import ModuleCall, frame_kind_is_other, model_frame, relative

# Ops whose output is allocated, not written: no summary of its values is one of the model's.
_UNINITIALISED = frozenset(
    {"empty", "empty_like", "empty_strided", "empty_permuted", "new_empty", "new_empty_strided"}
)

# Ops whose output holds exactly the input's values (same count, rearranged or aliased): their
# summary is the input's, with the new shape, instead of another pass over memory.
_SAME_VALUES = frozenset(
    {
        "view",
        "_unsafe_view",
        "reshape",
        "_reshape_alias",
        "t",
        "transpose",
        "permute",
        "squeeze",
        "unsqueeze",
        "flatten",
        "clone",
        "contiguous",
        "alias",
        "detach",
        "lift_fresh",
        "numpy_T",
    }
)


def step(
    model: Any,
    example_inputs: Any,
    *,
    name: str,
    method: str = "eager",
    signature: Any = None,
    keep: frozenset[str] = frozenset(),
) -> Steps:
    """Run the model once, recording every op; ``keep`` names nodes whose outputs are kept whole."""
    recorder = run(model, example_inputs, name=name, summaries=True, keep=keep)
    steps = Steps(recorder.graph, recorder.records)
    steps.values = recorder.kept
    return steps


def capture(model: Any, example_inputs: Any, *, name: str, method: str = "eager") -> ir.Graph:
    """The capture method ``eager``: the same graph, without the value summaries."""
    from graphscope.tracers import _meta

    _meta.refuse_meta(model, example_inputs, "eager capture")
    graph: ir.Graph = run(model, example_inputs, name=name, summaries=False).graph
    return graph


def run(
    model: Any, example_inputs: Any, *, name: str, summaries: bool, keep: frozenset[str] = frozenset()
) -> Any:
    """Run ``model`` under the recorder; returns the recorder (graph, records, kept values)."""
    torch = common.require_torch()
    common.check_module(model, example_inputs, "eager")
    inputs = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    graph = ir.Graph(
        name,
        framework="torch",
        capture="eager",
        framework_version=torch.__version__,
        signature=common.signature_of(inputs),
    )
    recorder = _new_recorder(graph, model, summaries=summaries, keep=keep)
    recorder.add_inputs(model, inputs)
    with common.model_left_untouched(model), common.quiet_torch_logs(), torch.no_grad():
        hooks = recorder.install_module_hooks(model)
        try:
            with recorder:
                result = model(*inputs)
        except GraphscopeError:
            raise
        except Exception as exc:
            raise run_error(exc) from None
        finally:
            for h in hooks:
                h.remove()
    recorder.add_output(result)
    return recorder


def _make_recorder_class() -> Any:
    """The recorder class, made on first use so that importing this module does not import torch."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import SUPPORTED_NODES, tree_flatten

    from graphscope.ops import canonical

    tensor_class = torch.Tensor
    op_info: dict[Any, tuple[str, str, str]] = {}  # op -> (packet name, op, canonical op)
    scope_lists: dict[str, list[str]] = {}  # module path -> scope
    dtype_names: dict[Any, str] = {}

    def _scan(value: Any, found: list[Any]) -> bool:
        """Append the tensors in ``value`` to ``found`` in tree_flatten's order; whether
        ``value`` is or holds a tensor (within lists and tuples, as _holds_tensor says)."""
        cls = value.__class__
        if cls is tuple or cls is list:
            holds = False
            for v in value:
                holds = _scan(v, found) or holds
            return holds
        if isinstance(value, tensor_class):
            found.append(value)
            return True
        if cls in SUPPORTED_NODES or isinstance(value, (tuple, list, dict)):
            # torch.Size, a namedtuple, a dict: rare in an op's arguments; pytree knows them
            leaves, _ = tree_flatten(value)
            found.extend(t for t in leaves if isinstance(t, tensor_class))
            return _holds_tensor(value)
        return False

    def _tensor_output(t: Any) -> dict[str, Any]:
        """``common.tensor_outputs(t)[0]`` for a tensor, faster."""
        dtype = t.dtype
        name = dtype_names.get(dtype)
        if name is None:
            name = dtype_names[dtype] = common.dtype_name(dtype)
        return {"shape": [d if d.__class__ is int else common.dim(d) for d in t.shape], "dtype": name}

    class Recorder(TorchDispatchMode):
        def __init__(self, graph: ir.Graph, model: Any, *, summaries: bool, keep: frozenset[str]) -> None:
            super().__init__()
            self.graph = graph
            self.summaries = summaries
            self.keep = keep
            self.kept: dict[str, list[Any]] = {}
            self.records: list[Record] = []
            self.record_index: dict[str, int] = {}
            self.producer = TensorMap()  # tensor -> (node id, port)
            self.cwd = os.getcwd()
            self.file_names: dict[str, str] = {}  # a frame's file -> as a node's source names it
            self.scope: list[str] = []
            self.calls: list[ModuleCall | None] = []  # the module calls running, innermost last
            self.names: dict[str, int] = {}
            self.keeps_inputs = InputKeeper()
            self.params: dict[int, str] = {}
            if isinstance(model, torch.nn.Module):
                for pname, p in model.named_parameters():
                    self.params[id(p)] = pname
                for bname, b in model.named_buffers():
                    self.params[id(b)] = bname
            self.param_nodes: dict[str, str] = {}

        # -- naming ---------------------------------------------------------------------

        def fresh_id(self, base: str) -> str:
            n = self.names.get(base, 0)
            self.names[base] = n + 1
            node_id = base if n == 0 else f"{base}_{n}"
            taken = self.graph.nx._node
            while node_id in taken:
                n += 1
                self.names[base] = n + 1
                node_id = f"{base}_{n}"
            return node_id

        # -- inputs, outputs, parameters -------------------------------------------------

        def add_inputs(self, model: Any, inputs: tuple[Any, ...]) -> None:
            arg_names = _argument_names(model, len(inputs))
            for i, value in enumerate(inputs):
                leaves, _ = tree_flatten(value)
                tensors = [t for t in leaves if isinstance(t, torch.Tensor)]
                if not tensors:
                    continue
                node_id = self.fresh_id(arg_names[i])
                self.graph.add_node(
                    node_id,
                    op="placeholder",
                    kind="input",
                    outputs=[common.tensor_outputs(t)[0] for t in tensors],
                )
                self.graph.inputs.append(node_id)
                summaries = []
                if node_id in self.keep:
                    self.kept[node_id] = [t.detach().clone() for t in tensors]
                for port, t in enumerate(tensors):
                    self.producer[t] = (node_id, port)
                    summaries.append(self.summarize(t) if self.summaries else None)
                self.add_record(node_id, "placeholder", [], None, summaries, [], [])

        def add_output(self, result: Any) -> None:
            leaves, _ = tree_flatten(result)
            node_id = self.fresh_id("output")
            tensors = [t for t in leaves if isinstance(t, torch.Tensor)]
            self.graph.add_node(
                node_id,
                op="output",
                kind="output",
                outputs=[common.tensor_outputs(t)[0] for t in tensors],
            )
            for port, t in enumerate(tensors):
                src = self.source_of_tensor(t)
                if src is not None:
                    self.graph.add_edge(src[0], node_id, src_port=src[1], dst_port=port)
            self.graph.outputs.append(node_id)

        def source_of_tensor(self, t: Any) -> tuple[str, int] | None:
            found = self.producer.get(t)
            if found is not None:
                return found
            pname = self.params.get(id(t))
            if pname is not None:
                node_id = self.param_nodes.get(pname)
                if node_id is None:
                    node_id = self.fresh_id(pname.replace(".", "_"))
                    self.graph.add_node(
                        node_id,
                        name=pname,
                        op="get_attr",
                        kind="param",
                        scope=pname.split(".")[:-1],
                        outputs=common.tensor_outputs(t),
                        attrs={"target": pname},
                    )
                    self.param_nodes[pname] = node_id
                return node_id, 0
            # A tensor made outside any op we saw (a tensor the model kept, a global): a constant.
            node_id = self.fresh_id("constant")
            self.graph.add_node(node_id, op="constant", kind="const", outputs=common.tensor_outputs(t))
            self.producer[t] = (node_id, 0)
            return node_id, 0

        # -- the ops ---------------------------------------------------------------------

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            self.record_op(func, args, kwargs, out)
            return out

        def record_op(self, func: Any, args: Any, kwargs: Any, out: Any) -> tuple[str, list[Any]]:
            """Add the node of one op that ran; returns its id and its output tensors."""
            # Runs for every op (a thousand in a small transformer): what depends only on the
            # op is computed once per op, the arguments are walked without pytree, and the
            # node's dict is built here, final, rather than converted again by add_node.
            info = op_info.get(func)
            if info is None:
                op = str(func)
                info = op_info[func] = (func.overloadpacket.__name__, op, canonical(op))
            packet, op, canonical_op = info
            node_id = self.fresh_id(packet)
            in_tensors: list[Any] = []
            attrs: dict[str, Any] = {}
            for i, a in enumerate(args):
                if not _scan(a, in_tensors):
                    attrs[_ARG_NAMES[i] if i < len(_ARG_NAMES) else f"arg{i}"] = attr_value(a)
            for k, v in kwargs.items():
                if not _scan(v, in_tensors):
                    attrs[k] = attr_value(v)
            producer = self.producer
            sources = [producer.get(t) or self.source_of_tensor(t) for t in in_tensors]
            out_tensors: list[Any] = []
            _scan(out, out_tensors)
            scope = self.scope[-1] if self.scope else ""
            scope_list = scope_lists.get(scope)
            if scope_list is None:
                scope_list = scope_lists[scope] = scope.split(".") if scope else []
            calls = self.calls
            where = model_frame(sys._getframe(1), calls[-1] if calls else None)
            if where is None:
                source = None
            else:
                file = self.file_names.get(where[0])
                if file is None:
                    file = self.file_names[where[0]] = relative(where[0], self.cwd)
                source = {"file": file, "line": where[1]}
            node = self.graph.add_node_dict(
                {
                    "id": node_id,
                    "name": node_id,
                    "op": op,
                    "canonical_op": canonical_op,
                    "kind": "op",
                    "scope": list(scope_list),
                    "outputs": [_tensor_output(t) for t in out_tensors],
                    "attrs": attrs,
                    "source": source,
                    "subgraphs": [],
                    "phase": "forward",
                    "grad_of": None,
                }
            )
            graph = self.graph
            for port, src in enumerate(sources):
                if src is not None:
                    graph.add_edge(src[0], node_id, src_port=src[1], dst_port=port)
            for port, t in enumerate(out_tensors):
                producer[t] = (node_id, port)  # an in-place op now owns its input tensor
            if node_id in self.keep:
                self.kept[node_id] = [t.detach().clone() for t in out_tensors]
            if not self.summaries:
                return node_id, out_tensors
            summaries: list[dict[str, Any] | None] = [
                self.output_summary(packet, t, in_tensors, sources) for t in out_tensors
            ]
            self.add_record(node_id, op, node["scope"], source, summaries, in_tensors, sources)
            return node_id, out_tensors

        def output_summary(
            self, packet: str, t: Any, in_tensors: list[Any], sources: list[tuple[str, int] | None]
        ) -> dict[str, Any]:
            if packet in _UNINITIALISED:
                # Memory nobody wrote yet (dropout's empty_like before its bernoulli_): whatever
                # it holds, NaN included, is no value of the model's.
                return {
                    **numerics.make(list(t.shape), str(t.dtype).removeprefix("torch.")),
                    "uninitialised": True,
                }
            if packet in _SAME_VALUES and in_tensors and sources[0] is not None:
                src_id, src_port = sources[0]
                prev = self.summary_of(src_id, src_port)
                same = in_tensors[0]
                if prev is not None and same.numel() == t.numel() and same.dtype == t.dtype:
                    return {**prev, "shape": list(t.shape)}
            return self.summarize(t)

        def summary_of(self, node_id: str, port: int) -> dict[str, Any] | None:
            index = self.record_index.get(node_id)
            if index is None:
                return None
            outs = self.records[index].outputs
            return outs[port] if port < len(outs) else None

        def summarize(self, t: Any) -> dict[str, Any]:
            return numerics.summarize_torch(t)

        def add_record(
            self,
            node_id: str,
            op: str,
            scope: list[str],
            source: dict[str, Any] | None,
            summaries: list[dict[str, Any] | None],
            in_tensors: list[Any],
            sources: list[tuple[str, int] | None],
        ) -> None:
            rec = Record(len(self.records), node_id, op, list(scope), source, summaries)
            if self.keeps_inputs(summaries):
                # A non-finite value: keep what went in, to tell born from inherited.
                # Each input as it was when it came in (the record of the op that made it): an
                # in-place op (log_) has already written over its input by now.
                rec.inputs = [
                    (self.summary_of(*src) if src is not None else None) or self.summarize(t)
                    for t, src in zip(in_tensors, sources)
                ]
                rec.input_nodes = [s[0] if s else "?" for s in sources]
            self.record_index[node_id] = rec.index
            self.records.append(rec)

        # -- module scopes -----------------------------------------------------------------

        def install_module_hooks(self, model: Any) -> list[Any]:
            if not isinstance(model, torch.nn.Module):
                return []
            paths = {id(m): path for path, m in model.named_modules()}
            stack = self.scope
            calls = self.calls

            def enter(module: Any, _args: Any) -> None:
                stack.append(paths.get(id(module), stack[-1] if stack else ""))
                # The frame that called this hook runs the module's forward next: the stack
                # beyond it is walked now, once, for every op the call runs (model_frame).
                caller = sys._getframe(1)
                parent = calls[-1] if calls else None
                calls.append(ModuleCall(caller, parent) if frame_kind_is_other(caller) else None)

            def leave(module: Any, _args: Any, _out: Any) -> None:
                if stack:
                    stack.pop()
                if calls:
                    calls.pop()

            from torch.nn.modules import module as module_mod

            return [
                module_mod.register_module_forward_pre_hook(enter),
                module_mod.register_module_forward_hook(leave, always_call=True),
            ]

    return Recorder


_recorder_class: Any = None


def recorder_class() -> Any:
    """The recorder (a TorchDispatchMode), for capture methods that record more than ops
    (the backward tracer subclasses it); made on first use, which imports torch."""
    global _recorder_class
    if _recorder_class is None:
        _recorder_class = _make_recorder_class()
    return _recorder_class


def _new_recorder(graph: ir.Graph, model: Any, *, summaries: bool, keep: frozenset[str]) -> Any:
    return recorder_class()(graph, model, summaries=summaries, keep=keep)


def run_error(exc: BaseException) -> GraphscopeError:
    """One sentence for a model that raised while being stepped: what, and where in its code."""
    return common.model_raised(exc)


class TensorMap:
    """tensor -> value by the tensor's identity, holding no tensor alive (what torch's
    ``WeakTensorKeyDictionary`` does, at a fraction of its cost: it makes a Python ``WeakIdRef``
    and compares two of them on every lookup, a few microseconds on every op recorded).

    An entry is the tensor's id and a weak reference to it: a lookup matches only the very tensor
    that was stored, so a new tensor that reuses a freed one's id is not taken for it. Entries of
    freed tensors stay until their id is reused (one small tuple per op's output)."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[int, tuple[Any, Any]] = {}

    def get(self, t: Any) -> Any:
        entry = self._entries.get(id(t))
        if entry is not None and entry[0]() is t:
            return entry[1]
        return None

    def __setitem__(self, t: Any, value: Any) -> None:
        self._entries[id(t)] = (weakref.ref(t), value)

    def __contains__(self, t: Any) -> bool:
        return self.get(t) is not None


_ARG_NAMES = tuple(f"arg{i}" for i in range(16))
_SIMPLE = frozenset({int, bool, str, type(None)})


def attr_value(value: Any) -> Any:
    """A non-tensor argument as a node's attribute: ``common.literal`` made JSON-safe, as
    ``add_node`` would store it; the common cases (ints, finite floats, int lists) directly."""
    cls = value.__class__
    if cls in _SIMPLE:
        return value
    if cls is float and math.isfinite(value):
        return value
    if (cls is list or cls is tuple) and len(value) <= 64 and all(v.__class__ is int for v in value):
        return list(value)
    return ir.json_safe(common.literal(value), _depth=1)


def _holds_tensor(value: Any) -> bool:
    import torch

    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (list, tuple)):
        return any(_holds_tensor(v) for v in value)
    return False


def _argument_names(model: Any, count: int) -> list[str]:
    """The forward()'s parameter names for the positional inputs, like FX's placeholders."""
    fn = getattr(model, "forward", model)
    try:
        params = [
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else f"input_{i}" for i in range(count)]
