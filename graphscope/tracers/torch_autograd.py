"""The backward graph as PyTorch's autograd builds it: ``trace --fw torch --backward`` (method ``eager``).

The forward pass runs once under the eager recorder (:mod:`graphscope.stepping.torch_eager`)
with autograd on, the model first, then ``loss_fn(output, *example_targets)`` under the scope
``loss``; every forward node is ``phase: forward``. While it runs, each op's output tensors are
looked at again when the next op starts, by which time autograd has set their ``grad_fn``:
that maps each autograd node to the forward op it differentiates (an in-place op's tensor gets
a new ``grad_fn``, and the map sees both).

The backward graph is then read, never run, from ``loss.grad_fn``, as torchviz's ``make_dot``
reads it: each autograd node's ``next_functions`` are the nodes its gradients flow to, and an
``AccumulateGrad`` node's ``variable`` is the parameter whose ``.grad`` it fills. Every autograd
node becomes one IR node with ``phase: backward``:

- ``op`` is the autograd class (``AddmmBackward0``, ``AccumulateGrad``); ``canonical_op`` is
  ``grad:`` plus the forward node's canonical op (``grad:addmm``), or ``accumulate_grad``;
- ``grad_of`` is the forward op whose output's ``grad_fn`` it is, or for ``AccumulateGrad`` the
  parameter; ``id`` is that node's id plus ``_grad`` (``addmm_1_grad``, ``fc1_weight_grad``);
- ``scope`` and ``source`` are the forward node's;
- ``outputs`` are the gradients it passes on, one per ``next_functions`` entry, shaped as the
  receiving node's ``_input_metadata`` says (the shape of the forward value differentiated);
  an input that needs no gradient gets an output of unknown shape, to keep the ports aligned;
- ``attrs`` hold the node's saved non-tensor values (``_saved_alpha`` -> ``alpha``) and, under
  ``saved``, the shapes of the tensors it saved for backward;
- a forward ``detach`` whose output nothing uses is dropped: autograd makes one when it saves
  an op's output for backward;
- edges run the way gradients flow: from the ``grad_seed`` node (d loss / d loss, the one
  bookkeeping node) to the loss's ``grad_fn``, and from each node to its ``next_functions``
  (``src_port`` the entry, ``dst_port`` the gradient input it feeds). A saved tensor that a
  forward node produced adds an edge from that forward node (``dst_port`` after the gradient).

Nothing is run backwards and no ``.grad`` is written: the model is left as it was. Since no
value is read, a model on PyTorch's ``meta`` device (no weights) has its backward graph too.
"""

from __future__ import annotations

import heapq
import re
import warnings
from typing import Any

from graphscope import ir
from graphscope.errors import GraphscopeError
from graphscope.stepping import torch_eager
from graphscope.tracers import _torch_common as common
from graphscope.tracers._training import argument_names, as_tuple

__all__ = ["capture", "check_trainable", "record_step", "training_loss"]

_SAVED = "_saved_"
# Saved sizes and strides repeat the shapes the saved tensors already show.
_SAVED_NOISE = re.compile(r"_sym_(sizes|strides)(_opt)?$|_(sizes|strides)$")
# A loss whose inputs do not line up: the framework's words for it.
_SHAPE_WORDS = ("size", "shape", "dimension", "broadcast")


def capture(
    model: Any,
    example_inputs: Any,
    *,
    name: str,
    method: str = "eager",
    example_targets: Any = None,
    loss_fn: Any = None,
    where: str = "the model",
) -> ir.Graph:
    """Forward, loss and backward graph of one training step. ``where`` names the model file
    in the sentences that say what is wrong with the training conventions."""
    torch = common.require_torch()
    common.check_module(model, example_inputs, "--backward")
    with common.model_left_untouched(model), common.quiet_torch_logs(), torch.enable_grad():
        graph, _, _, _ = record_step(
            torch, model, example_inputs, example_targets, loss_fn, name=name, summaries=False, where=where
        )
    return graph


def record_step(
    torch: Any,
    model: Any,
    example_inputs: Any,
    example_targets: Any,
    loss_fn: Any,
    *,
    name: str,
    summaries: bool,
    where: str,
) -> tuple[ir.Graph, Any, Any, _Backward]:
    """The forward pass and the loss under the (grad-mapping) eager recorder, and the backward
    graph read from the loss: ``(graph, recorder, loss, backward)``. Runs the model once; call
    it with autograd enabled. ``summaries``: each forward value summarised (``step --train``)."""
    inputs = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    targets = as_tuple(example_targets)
    check_trainable(torch, model, where)
    graph = ir.Graph(
        name,
        framework="torch",
        capture="eager",
        framework_version=torch.__version__,
        signature=common.signature_of(inputs),
    )
    recorder = _grad_recorder_class()(graph, model, summaries=summaries, keep=frozenset())
    recorder.add_inputs(model, inputs)
    hooks = recorder.install_module_hooks(model)
    try:
        with recorder:
            output = model(*inputs)
            recorder.see_outputs()
            recorder.add_output(output)
            recorder.add_targets(targets, loss_fn)
            loss = training_loss(torch, recorder, output, targets, loss_fn, where)
            recorder.see_outputs()
    except GraphscopeError:
        raise
    except Exception as exc:
        raise torch_eager.run_error(exc) from None
    finally:
        for h in hooks:
            h.remove()
    recorder.add_loss(loss)
    _drop_autograd_detaches(graph)
    if loss.grad_fn is None:
        raise GraphscopeError(
            f"{where}: the loss does not depend on any parameter that requires grad "
            "(is the output detached, or computed under torch.no_grad()?)"
        )
    backward = _Backward(torch, graph, recorder)
    backward.add(loss)
    return graph, recorder, loss, backward


def _drop_autograd_detaches(graph: ir.Graph) -> None:
    """Autograd detaches an op's output when it saves it for backward (``ReluBackward0`` keeps
    ``result``): a ``detach`` whose output nothing uses is that bookkeeping, not the model's."""
    unused = [
        n["id"] for n in graph.nodes() if n["op"] == "aten.detach.default" and not graph.nx._succ[n["id"]]
    ]
    graph.nx.remove_nodes_from(unused)


def check_trainable(torch: Any, model: Any, where: str) -> None:
    if not isinstance(model, torch.nn.Module):
        return  # a plain function: whatever requires grad is in its inputs or closure
    if not any(p.requires_grad for p in model.parameters()):
        raise GraphscopeError(
            f"{where}: the model has no parameters that require grad, so training it computes no gradients"
        )


def training_loss(
    torch: Any, recorder: Any, output: Any, targets: tuple[Any, ...], loss_fn: Any, where: str
) -> Any:
    """``loss_fn(output, *targets)`` recorded under the scope ``loss``, checked to be a scalar;
    the output itself when there is no ``loss_fn``."""
    if loss_fn is None:
        if not _is_scalar(torch, output):
            raise GraphscopeError(
                f"{where}: the model's output is {_describe(torch, output)}, not a scalar, and the file "
                "defines no loss_fn(output, *targets) to make a loss of it"
            )
        return output
    _check_target_shapes(torch, output, targets, where)
    recorder.scope.append("loss")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loss = loss_fn(output, *targets)
    except Exception as exc:
        reason = torch_eager.run_error(exc).args[0].removeprefix("the model raised ")
        reason = reason.removesuffix(" while running on its example inputs")
        if any(w in str(exc).lower() for w in _SHAPE_WORDS) and targets:
            raise GraphscopeError(
                f"{where}: example_targets do not fit the model's output "
                f"({_describe(torch, output)}): loss_fn raised {reason}"
            ) from None
        raise GraphscopeError(f"{where}: loss_fn(output, *example_targets) raised {reason}") from None
    finally:
        recorder.scope.pop()
    for w in caught:
        text = str(w.message)
        if "target size" in text.lower():  # torch broadcasts, then warns: the loss is wrong
            raise GraphscopeError(
                f"{where}: example_targets do not fit the model's output: {text.split('. ')[0]}"
            )
    if not _is_scalar(torch, loss):
        raise GraphscopeError(
            f"{where}: loss_fn(output, *example_targets) returned {_describe(torch, loss)}, not a scalar"
        )
    return loss


def _check_target_shapes(torch: Any, output: Any, targets: tuple[Any, ...], where: str) -> None:
    """A target tensor whose batch size is not the output's is wrong whatever the loss does."""
    if not (isinstance(output, torch.Tensor) and output.dim() >= 1):
        return
    for i, t in enumerate(targets):
        if isinstance(t, torch.Tensor) and t.dim() >= 1 and t.shape[0] != output.shape[0]:
            raise GraphscopeError(
                f"{where}: example_targets[{i}] has shape {list(t.shape)}, but the model's output "
                f"has shape {list(output.shape)}: their first (batch) dimensions differ"
            )


def _is_scalar(torch: Any, value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.numel() == 1 and value.is_floating_point()


def _describe(torch: Any, value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return (
            f"a tensor of shape {list(value.shape)}"
            if value.dim()
            else f"a {common.dtype_name(value.dtype)} tensor"
        )
    return f"a {type(value).__name__}"


# -- the forward recorder, which also remembers each tensor's grad_fn -------------------------------


_grad_recorder: Any = None


def _grad_recorder_class() -> Any:
    global _grad_recorder
    if _grad_recorder is not None:
        return _grad_recorder
    from torch.utils._pytree import tree_flatten

    base = torch_eager.recorder_class()

    class GradRecorder(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.pending: tuple[str, list[Any]] | None = None  # the last op's id and outputs
            self.grad_fns: dict[Any, str] = {}  # autograd node -> the forward node it differentiates

        def record_op(self, func: Any, args: Any, kwargs: Any, out: Any) -> tuple[str, list[Any]]:
            # Autograd sets an op's grad_fn after the op returns: the previous op's is set now.
            self.see_outputs()
            node_id, out_tensors = super().record_op(func, args, kwargs, out)
            self.pending = (node_id, out_tensors)
            return node_id, out_tensors

        def see_outputs(self) -> None:
            if self.pending is None:
                return
            node_id, tensors = self.pending
            for t in tensors:
                fn = t.grad_fn
                if fn is not None:
                    self.grad_fns[fn] = node_id  # the object itself: its id could be reused
            self.pending = None

        def add_targets(self, targets: tuple[Any, ...], loss_fn: Any) -> None:
            names = argument_names(loss_fn, len(targets), skip=1, default="target")
            for name, value in zip(names, targets):
                leaves, _ = tree_flatten(value)
                tensors = [t for t in leaves if hasattr(t, "shape") and hasattr(t, "dtype")]
                if not tensors:
                    continue
                node_id = self.fresh_id(name)
                self.graph.add_node(
                    node_id,
                    op="placeholder",
                    kind="input",
                    scope=["loss"],
                    outputs=[common.tensor_outputs(t)[0] for t in tensors],
                )
                self.graph.inputs.append(node_id)
                for port, t in enumerate(tensors):
                    self.producer[t] = (node_id, port)

        def add_loss(self, loss: Any) -> None:
            src = self.source_of_tensor(loss)
            node_id = self.fresh_id("loss")  # "loss", unless the model has a value of that name
            self.graph.add_node(
                node_id, op="output", kind="output", scope=["loss"], outputs=common.tensor_outputs(loss)
            )
            if src is not None:
                self.graph.add_edge(src[0], node_id, src_port=src[1])
            self.graph.outputs.append(node_id)

    _grad_recorder = GradRecorder
    return GradRecorder


# -- the backward graph ----------------------------------------------------------------------------


class _Backward:
    """Reads the autograd graph from the loss's grad_fn into IR nodes (see the module docstring)."""

    def __init__(self, torch: Any, graph: ir.Graph, recorder: Any) -> None:
        self.torch = torch
        self.graph = graph
        self.recorder = recorder
        self.ids: dict[Any, str] = {}
        self._saved: dict[Any, list[tuple[str, Any]]] = {}

    def add(self, loss: Any) -> None:
        fns, edges = self.walk(loss.grad_fn)
        seed = self.add_seed(loss)
        for fn in fns:
            self.add_node(fn)
        self.graph.add_edge(seed, self.ids[loss.grad_fn])
        for fn, port, nxt, nr in edges:
            self.graph.add_edge(self.ids[fn], self.ids[nxt], src_port=port, dst_port=nr)
        for fn in fns:
            self.add_saved_edges(fn)
        # The saved tensors read for the graph are the forward's activations: held here, they
        # would outlive their release by backward (step --train runs it next) until the step ends.
        self._saved.clear()

    def walk(self, root: Any) -> tuple[list[Any], list[tuple[Any, int, Any, int]]]:
        """Every autograd node reachable from ``root``, in an order where each comes after
        all that send it gradients (ties by discovery), and the edges between them."""
        found: list[Any] = [root]
        index = {root: 0}
        edges: list[tuple[Any, int, Any, int]] = []
        nexts: list[Any] = []  # each node's next_functions (a new tuple on every read)
        i = 0
        while i < len(found):
            fn = found[i]
            i += 1
            nexts.append(fn.next_functions)
            for port, (nxt, nr) in enumerate(nexts[-1]):
                if nxt is None:
                    continue
                if nxt not in index:
                    index[nxt] = len(found)
                    found.append(nxt)
                edges.append((fn, port, nxt, nr))
        waiting = {fn: 0 for fn in found}
        for _, _, nxt, _ in edges:
            waiting[nxt] += 1
        ready = [index[root]]
        order = []
        while ready:
            at = heapq.heappop(ready)
            order.append(found[at])
            for nxt, _ in nexts[at]:
                if nxt is None:
                    continue
                waiting[nxt] -= 1
                if waiting[nxt] == 0:
                    heapq.heappush(ready, index[nxt])
        return order, edges

    def add_seed(self, loss: Any) -> str:
        node_id = self.recorder.fresh_id("grad_seed")
        self.graph.add_node(
            node_id,
            op="grad_seed",
            kind="const",
            scope=["loss"],
            outputs=common.tensor_outputs(loss),
            attrs={"value": 1.0},
            phase="backward",
        )
        return node_id

    def add_node(self, fn: Any) -> None:
        cls = type(fn).__name__
        forward = self.forward_node(fn)
        fwd = self.graph.nx._node[forward] if forward is not None else None
        if forward is None:
            node_id = self.recorder.fresh_id(_snake(cls))
            canonical = _snake(cls)
        else:
            node_id = self.recorder.fresh_id(f"{forward}_grad")
            canonical = (
                "accumulate_grad" if cls == "AccumulateGrad" else f"grad:{fwd['canonical_op'] if fwd else ''}"
            )
        self.ids[fn] = node_id
        attrs = self.saved_attrs(fn)
        source = fwd["source"] if fwd else None
        # The dict add_node would build (a thousand autograd nodes in a small transformer).
        self.graph.add_node_dict(
            {
                "id": node_id,
                "name": cls,
                "op": cls,
                "canonical_op": canonical,
                "kind": "op",
                "scope": list(fwd["scope"]) if fwd else [],
                "outputs": self.gradient_outputs(fn),
                "attrs": attrs,
                "source": None if source is None else dict(source),
                "subgraphs": [],
                "phase": "backward",
                "grad_of": forward,
            }
        )

    def forward_node(self, fn: Any) -> str | None:
        if _accumulates(type(fn), fn):  # AccumulateGrad: the parameter (or input) it fills
            src = self.recorder.source_of_tensor(fn.variable)
            return src[0] if src is not None else None
        found: str | None = self.recorder.grad_fns.get(fn)
        return found

    def gradient_outputs(self, fn: Any) -> list[dict[str, Any]]:
        if _accumulates(type(fn), fn):
            return common.tensor_outputs(fn.variable)
        outputs: list[dict[str, Any]] = []
        for nxt, nr in fn.next_functions:
            meta = _input_metadata(nxt, nr)
            if meta is None:
                outputs.append({"shape": None, "dtype": None})
            else:
                shape = [d if d.__class__ is int else common.dim(d) for d in meta.shape]
                dtype = _DTYPE_NAMES.get(meta.dtype) or _DTYPE_NAMES.setdefault(
                    meta.dtype, common.dtype_name(meta.dtype)
                )
                outputs.append({"shape": shape, "dtype": dtype})
        return outputs

    def saved(self, fn: Any) -> list[tuple[str, Any]]:
        """``fn``'s ``_saved_*`` values (sizes and strides left out), read once per node."""
        found = self._saved.get(fn)
        if found is not None:
            return found
        out = []
        for attr, key in _saved_names(type(fn)):
            try:
                value = getattr(fn, attr)
            except Exception:  # a saved tensor already freed, or one that cannot be unpacked
                continue
            out.append((key, value))
        self._saved[fn] = out
        return out

    def saved_attrs(self, fn: Any) -> dict[str, Any]:
        """The node's attributes, JSON-safe as ``add_node`` would make them."""
        attrs: dict[str, Any] = {}
        tensors: dict[str, Any] = {}
        for key, value in self.saved(fn):
            if isinstance(value, self.torch.Tensor):
                tensors[key] = common.tensor_outputs(value)[0]
            elif isinstance(value, (tuple, list)) and any(isinstance(v, self.torch.Tensor) for v in value):
                shapes = [common.tensor_outputs(v)[0] for v in value if isinstance(v, self.torch.Tensor)]
                # (a long list summarised, as json_safe does at this depth)
                tensors[key] = shapes if len(shapes) <= _MAX_ITEMS else ir.json_safe(shapes, _depth=2)
            elif value is not None:  # None: a tensor not saved, since no gradient needs it
                attrs[key] = torch_eager.attr_value(value)
        if tensors:
            attrs["saved"] = tensors
        return attrs

    def add_saved_edges(self, fn: Any) -> None:
        """An edge from the forward node that produced each saved tensor, when it is known."""
        node_id = self.ids[fn]
        port = sum(len(keys) for keys in self.graph.nx._pred[node_id].values())  # its in-edges
        port = max(port, 1)
        for key, value in self.saved(fn):
            values = value if isinstance(value, (tuple, list)) else (value,)
            for v in values:
                if not isinstance(v, self.torch.Tensor):
                    continue
                src = self.recorder.producer.get(v)
                if src is None and _RESULT.match(key):
                    src = self.saved_output(fn, key, v)
                if src is not None and src[0] in self.graph:  # (not a dropped autograd detach)
                    self.graph.add_edge(src[0], node_id, src_port=src[1], dst_port=port)
                port += 1

    def saved_output(self, fn: Any, key: str, value: Any) -> tuple[str, int] | None:
        """The forward node and port of an output ``fn`` saved (``result``, ``result1``): the
        op's output itself, which unpacking hands back as a new tensor object (sqrt's gradient
        reads sqrt's result)."""
        forward = self.recorder.grad_fns.get(fn)
        if forward is None or forward not in self.graph:
            return None
        port = int(key[len("result") :] or 0)
        outputs = self.graph.node(forward)["outputs"]
        if port >= len(outputs) or outputs[port].get("shape") != list(value.shape):
            return None
        return forward, port


_SAVED_NAMES: dict[type, list[tuple[str, str]]] = {}
_RESULT = re.compile(r"^result\d*$")  # an op's output saved for its gradient (result, result1)
_DTYPE_NAMES: dict[Any, str] = {}  # torch dtype -> its name, for a gradient per autograd edge


def _saved_names(cls: type) -> list[tuple[str, str]]:
    """An autograd class's ``_saved_*`` attributes (sizes and strides left out) and the keys
    they are shown under: ``dir`` once per class, not once per node."""
    names = _SAVED_NAMES.get(cls)
    if names is None:
        names = _SAVED_NAMES[cls] = [
            (attr, attr[len(_SAVED) :])
            for attr in dir(cls)
            if attr.startswith(_SAVED) and not _SAVED_NOISE.search(attr)
        ]
    return names


_ACCUMULATES: dict[type, bool] = {}
_MAX_ITEMS = 64  # ir.json_safe's longest list kept whole


def _accumulates(cls: type, fn: Any) -> bool:
    """Whether autograd nodes of class ``cls`` fill a tensor's ``.grad`` (``AccumulateGrad``,
    which has a ``variable``): asked once per class, not once per node."""
    found = _ACCUMULATES.get(cls)
    if found is None:
        found = _ACCUMULATES[cls] = hasattr(fn, "variable")
    return found


def _input_metadata(fn: Any, nr: int) -> Any:
    if fn is None:
        return None
    try:
        return fn._input_metadata[nr]
    except (AttributeError, IndexError):
        return None


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
