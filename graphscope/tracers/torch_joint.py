"""The joint forward+backward ATen graph, as AOTAutograd builds it: ``trace --fw torch --backward
--method export``.

The model and its loss go into one module, ``loss_fn(model(*inputs), *targets)`` (the model's
output detached beside it, so that it is an output too), which ``torch.export.export`` captures;
AOTAutograd then traces the exported module's forward and its backward into one functionalized
ATen graph (``aot_export_joint_with_descriptors``, what ``torch.compile`` partitions into its
forward and backward graphs). It is the graph a compiler sees: ``mse_loss_backward``,
``threshold_backward``, the ``mm`` and ``t`` of each linear's gradient, where ``--method eager``
shows one autograd node per forward op (``AddmmBackward0``). Nothing runs on real values, so no
``.grad`` is written, and a model on the ``meta`` device has its joint graph too.

What PyTorch 2.13 records on each FX node, and what graphscope makes of it:

- ``partitioner_tag`` (``is_forward`` / ``is_backward``) and ``autograd_backward``: the phase;
- ``seq_nr``: a backward node carries the sequence number of the autograd node that made it,
  and a forward node the number of the last autograd node created when it ran (``_get_seq_nr``
  in ``torch/fx/proxy.py``), so the first forward node with a number is the op whose gradient
  it is: that is ``grad_of``. A forward op that makes no autograd node (``detach``) repeats
  the number of the op before it, after it;
- ``is_gradient_acc``: the ``add`` the autograd engine makes to sum the gradients of a value
  used twice (a residual connection); its ``seq_nr`` is stale (it named the loss), so its
  ``grad_of`` is found from the graph instead (:meth:`_Converter.link_gradient_sums`), or left
  null, with ``attrs.gradient_sum`` saying what it is;
- ``nn_module_stack`` and ``stack_trace``: scopes and source lines of forward nodes, from the
  user's model (the ``model.`` prefix of the wrapper taken off; the loss under ``loss``, as
  ``--method eager`` puts it). A backward node takes its forward node's;
- ``desc`` on placeholders and on the output: which input is a parameter, a buffer, a user
  input, or the tangent that seeds the backward pass (``d loss / d loss``: the ``grad_seed``,
  a backward input with ``grad_of`` null), and which output is the loss, the model's output,
  or the gradient of a parameter. The seed is a node of op ``tangent`` (AOTAutograd's word,
  canonical op ``grad_seed``); each parameter gradient becomes an output node of its own, op
  ``grad_output``, id ``<param>_grad``, whose ``grad_of`` is the parameter (canonical op
  ``accumulate_grad``, as eager's ``AccumulateGrad``: the value that lands in ``.grad``).

A model that export cannot capture is refused in one sentence; ``tracers.capture_backward``
adds the method that captures it.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from typing import Any

from graphscope import ir
from graphscope.errors import CaptureError, GraphscopeError
from graphscope.tracers import _torch_common as common
from graphscope.tracers._training import argument_names, as_tuple

__all__ = ["capture"]

_MODEL = "model"  # the wrapper's attribute holding the user's model: a prefix to take off
_LOSS = "loss_fn"


def capture(
    model: Any,
    example_inputs: Any,
    *,
    name: str,
    method: str = "export",
    example_targets: Any = None,
    loss_fn: Any = None,
    where: str = "the model",
) -> ir.Graph:
    """Forward, loss and backward of one training step as one ATen graph (module docstring)."""
    torch = common.require_torch()
    common.check_module(model, example_inputs, "--backward")
    inputs = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    targets = as_tuple(example_targets)
    if not isinstance(model, torch.nn.Module):
        raise CaptureError(
            "export cannot capture the backward graph of a plain function: the tensors it "
            "differentiates are not parameters of a module"
        )
    with common.model_left_untouched(model), common.quiet_torch_logs():
        _check_step(torch, model, inputs, targets, loss_fn, where)
        gm = _joint_graph(torch, _training_step(torch, model, loss_fn, len(inputs)), inputs + targets)
    graph = ir.Graph(
        name,
        framework="torch",
        capture="export",
        framework_version=torch.__version__,
        signature=common.signature_of(inputs),
    )
    _Converter(graph, gm, model, loss_fn, inputs, targets).convert()
    return graph


def _check_step(
    torch: Any, model: Any, inputs: tuple[Any, ...], targets: tuple[Any, ...], loss_fn: Any, where: str
) -> None:
    """Run the model and the loss once, eagerly, to say what is wrong with the training
    conventions (or the model) in the words ``--method eager`` uses, before any capture."""
    from graphscope.stepping import torch_eager
    from graphscope.tracers import torch_autograd

    torch_autograd.check_trainable(torch, model, where)
    with torch.enable_grad():
        try:
            output = model(*inputs)
        except Exception as exc:
            raise torch_eager.run_error(exc) from None
        loss = torch_autograd.training_loss(
            torch, types.SimpleNamespace(scope=[]), output, targets, loss_fn, where
        )
    if loss.grad_fn is None:
        raise GraphscopeError(
            f"{where}: the loss does not depend on any parameter that requires grad "
            "(is the output detached, or computed under torch.no_grad()?)"
        )


def _training_step(torch: Any, model: Any, loss_fn: Any, n_inputs: int) -> Any:
    """One module computing ``(loss, output.detach())``; ``(output,)`` when it is the loss."""
    from torch.utils._pytree import tree_map

    class TrainingStep(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            setattr(self, _MODEL, model)
            setattr(self, _LOSS, loss_fn)  # a module (nn.MSELoss()) is registered as one

        def forward(self, *args: Any) -> Any:
            output = getattr(self, _MODEL)(*args[:n_inputs])
            if loss_fn is None:
                return (output,)
            loss = getattr(self, _LOSS)(output, *args[n_inputs:])
            return (loss, tree_map(lambda v: v.detach() if isinstance(v, torch.Tensor) else v, output))

    return TrainingStep()


def _joint_graph(torch: Any, step: Any, args: tuple[Any, ...]) -> Any:
    """``torch.export.export`` of the step, then AOTAutograd's joint graph of what it exported."""
    from torch._functorch.aot_autograd import aot_export_joint_with_descriptors

    try:
        with _loss_lines_kept(step):
            exported = torch.export.export(step, args)
    except Exception as exc:
        raise common.capture_error("torch.export", exc) from None
    try:
        with contextlib.ExitStack() as stack:
            joint = aot_export_joint_with_descriptors(stack, exported.module(), args)
            return joint.graph_module
    except Exception as exc:
        raise common.capture_error("AOTAutograd's joint graph", exc) from None


@contextlib.contextmanager
def _loss_lines_kept(step: Any) -> Iterator[None]:
    """Export keeps only the stack frames of ``forward`` methods (and registered anchors): the
    ``loss_fn``'s lines would be lost, and its ops would point at graphscope's wrapper."""
    from torch.fx import proxy

    anchors: set[tuple[str, str]] = getattr(proxy, "_STACK_TRACE_ANCHORS", set())
    code = getattr(getattr(step, _LOSS), "__code__", None)
    key = (code.co_filename, code.co_name) if code is not None else None
    added = key is not None and key not in anchors
    if key is not None and added:
        anchors.add(key)
    try:
        yield
    finally:
        if key is not None and added:
            anchors.discard(key)


class _Converter:
    """The joint FX graph into IR nodes, in graph order: placeholders by their descriptors,
    ops with their phase and ``grad_of``, the output split into loss, output and gradients."""

    def __init__(
        self,
        graph: ir.Graph,
        gm: Any,
        model: Any,
        loss_fn: Any,
        inputs: tuple[Any, ...],
        targets: tuple[Any, ...],
    ) -> None:
        from torch.utils._pytree import tree_flatten

        self.graph = graph
        self.gm = gm
        self.ids: dict[Any, tuple[str, int]] = {}  # FX node -> (IR node, output port)
        # Names an IR node may not take: every op keeps its FX name.
        self.taken = {n.name for n in gm.graph.nodes if n.op not in ("placeholder", "output")}
        self.forward_of: dict[int, Any] = {}  # seq_nr -> the forward op that made that autograd node
        # Each flat user argument: (argument index, leaf index within it).
        self.leaves: list[tuple[int, int]] = []
        self.needs_grad: list[bool] = []  # each flat user argument's requires_grad
        for i, value in enumerate(inputs + targets):
            leaves, _ = tree_flatten(value)
            self.leaves += [(i, j) for j in range(len(leaves))]
            self.needs_grad += [bool(getattr(v, "requires_grad", False)) for v in leaves]
        self.n_inputs = len(inputs)
        self.arg_names = argument_names(getattr(model, "forward", model), len(inputs)) + argument_names(
            loss_fn, len(targets), skip=1, default="target"
        )
        self.arg_nodes: dict[int, str] = {}
        self.detached_output: set[Any] = set()

    def fresh(self, base: str) -> str:
        node_id, n = base, 0
        while node_id in self.taken or node_id in self.graph:
            n += 1
            node_id = f"{base}_{n}"
        self.taken.add(node_id)
        return node_id

    def convert(self) -> None:
        output = None
        self.find_detached_output()
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                self.add_placeholder(node)
            elif node.op == "output":
                output = node
            elif node not in self.detached_output:
                self.add_op(node)
        if output is not None:
            self.add_outputs(output)
        self.drop_unused_gradients()
        self.link_gradient_sums()

    def link_gradient_sums(self) -> None:
        """A value used twice (a residual connection's input) gets the sum of the gradients
        its users send back: an ``add`` the autograd engine makes (``is_gradient_acc``), whose
        ``seq_nr`` is whatever ran last, not its value's. Its ``grad_of`` is the forward node
        that made the value: the one forward input shared by the ops whose gradients it sums;
        else the op whose backward reads the sum, when that op's value does have several users.
        Otherwise it stays null, bookkeeping that says what it is (``attrs.gradient_sum``)."""
        g = self.graph
        for node_id in [n["id"] for n in g.nodes() if n["attrs"].get("gradient_sum")]:
            fwd = self.shared_input(node_id) or self.read_by(node_id)
            if fwd is None:
                continue
            node = g.node(node_id)
            node["grad_of"] = fwd
            node["scope"] = list(g.node(fwd)["scope"])
            node["source"] = g.node(fwd)["source"]

    def summed(self, node_id: str) -> list[str | None]:
        """The forward ops whose gradients a gradient sum adds (through nested sums)."""
        g = self.graph
        out: list[str | None] = []
        for p in g.predecessors(node_id):
            if g.node(p)["phase"] != "backward":
                continue
            out.extend(self.summed(p) if g.node(p)["attrs"].get("gradient_sum") else [g.node(p)["grad_of"]])
        return out

    def shared_input(self, node_id: str) -> str | None:
        g = self.graph
        users = self.summed(node_id)
        if len(users) < 2 or None in users:
            return None
        shared = set.intersection(*(set(g.predecessors(u)) for u in users if u is not None))
        shared = {i for i in shared if g.node(i)["phase"] == "forward"}
        return shared.pop() if len(shared) == 1 else None

    def read_by(self, node_id: str) -> str | None:
        g = self.graph
        reader: str | None = node_id
        seen = {node_id}
        while reader is not None and g.node(reader)["attrs"].get("gradient_sum"):
            nxt = [s for s in g.successors(reader) if s not in seen]
            reader = nxt[0] if len(nxt) == 1 else None
            seen.update(nxt)
        fwd: str | None = g.node(reader)["grad_of"] if reader is not None else None
        if fwd is None or sum(g.node(s)["phase"] == "forward" for s in g.successors(fwd)) < 2:
            return None
        return fwd

    def drop_unused_gradients(self) -> None:
        """Backward ops whose result nothing reads: what computed a gradient left out below."""
        nx = self.graph.nx
        dead = [i for i, d in nx.nodes(data=True) if d["phase"] == "backward" and d["kind"] == "op"]
        while dead:
            gone = [i for i in dead if i in nx and not nx._succ[i]]
            if not gone:
                return
            preds = {p for i in gone for p in nx._pred[i]}
            nx.remove_nodes_from(gone)
            dead = [p for p in preds if nx.nodes[p]["phase"] == "backward" and nx.nodes[p]["kind"] == "op"]

    # -- placeholders ------------------------------------------------------------------------

    def add_placeholder(self, node: Any) -> None:
        desc = node.meta.get("desc")
        kind_name = type(desc).__name__
        value = node.meta.get("val")
        if kind_name in ("ParamAOTInput", "BufferAOTInput"):
            target = _without_model_prefix(desc.target)
            scope = target.split(".")[:-1]
            if scope[:1] == [_LOSS]:  # a loss_fn module's own weights
                scope = ["loss", *scope[1:]]
            node_id = self.fresh(target.replace(".", "_"))
            self.graph.add_node(
                node_id,
                name=target,
                op="placeholder",
                canonical_op="variable",
                kind="param",
                scope=scope,
                outputs=common.tensor_outputs(value),
            )
            self.ids[node] = (node_id, 0)
        elif kind_name == "PlainAOTInput" and desc.idx < len(self.leaves):
            arg, leaf = self.leaves[desc.idx]
            if arg not in self.arg_nodes:
                self.arg_nodes[arg] = self.fresh(self.arg_names[arg])
                self.graph.add_node(
                    self.arg_nodes[arg],
                    op="placeholder",
                    kind="input",
                    scope=[] if arg < self.n_inputs else ["loss"],
                )
                self.graph.inputs.append(self.arg_nodes[arg])
            self.graph.node(self.arg_nodes[arg])["outputs"].extend(common.tensor_outputs(value))
            self.ids[node] = (self.arg_nodes[arg], leaf)
        elif kind_name == "TangentAOTInput":
            # d loss / d loss: what loss.backward() seeds the backward pass with (ones)
            node_id = self.fresh("grad_seed")
            self.graph.add_node(
                node_id,
                name=node.name,
                op="tangent",
                canonical_op="grad_seed",
                kind="input",
                scope=["loss"],
                outputs=common.tensor_outputs(value),
                phase="backward",
            )
            self.graph.inputs.append(node_id)
            self.ids[node] = (node_id, 0)
        else:  # a descriptor this version does not know: an input, under its FX name
            node_id = self.fresh(node.name)
            self.graph.add_node(node_id, op="placeholder", kind="input", outputs=common.tensor_outputs(value))
            self.graph.inputs.append(node_id)
            self.ids[node] = (node_id, 0)

    # -- ops ---------------------------------------------------------------------------------

    def add_op(self, node: Any) -> None:
        backward = node.meta.get("partitioner_tag") == "is_backward" or bool(
            node.meta.get("autograd_backward")
        )
        seq_nr = node.meta.get("seq_nr")
        fwd = None
        gradient_sum = backward and bool(node.meta.get("is_gradient_acc"))
        if gradient_sum:
            seq_nr = None  # the engine's, not a node's: its number is stale (see link_gradient_sums)
        if backward and seq_nr is not None:
            fwd_node = self.forward_of.get(seq_nr)
            fwd = self.graph.node(self.ids[fwd_node][0]) if fwd_node in self.ids else None
        elif not backward and seq_nr is not None:
            self.forward_of.setdefault(seq_nr, node)
        if fwd is not None:
            scope, source = fwd["scope"], fwd["source"]
        elif gradient_sum:
            scope, source = [], None  # its forward node's, once known (link_gradient_sums)
        else:
            stack = node.meta.get("fwd_nn_module_stack") if backward else node.meta.get("nn_module_stack")
            scope = _scope(stack)
            source = common.source_from_stack(node.meta.get("stack_trace"))
        attrs: dict[str, Any] = {"gradient_sum": True} if gradient_sum else {}
        if node.op == "call_function":
            attrs.update(
                {f"arg{i}": common.literal(a) for i, a in enumerate(node.args) if not common._has_node(a)}
            )
            attrs.update({k: common.literal(v) for k, v in node.kwargs.items() if not common._has_node(v)})
        node_id = node.name
        self.taken.add(node_id)
        self.graph.add_node(
            node_id,
            op=common.op_name(node, self.gm),
            kind="op" if node.op != "get_attr" else "const",
            scope=scope,
            outputs=common.tensor_outputs(node.meta.get("val")),
            attrs=attrs,
            source=source,
            phase="backward" if backward else "forward",
            grad_of=fwd["id"] if fwd is not None else None,
        )
        self.ids[node] = (node_id, 0)
        for port, arg in enumerate(node.all_input_nodes):
            src, src_port = self.ids[arg]
            self.graph.add_edge(src, node_id, src_port=src_port, dst_port=port)

    # -- outputs -----------------------------------------------------------------------------

    def find_detached_output(self) -> None:
        """The detaches the training step put on the model's output, to be left out: they are
        graphscope's, not the model's."""
        output = next(n for n in self.gm.graph.nodes if n.op == "output")
        for value, desc in zip(output.args[0], output.meta.get("desc") or ()):
            if (
                type(desc).__name__ == "PlainAOTOutput"
                and desc.idx >= 1
                and getattr(value, "target", None) is not None
                and str(value.target) == "aten.detach.default"
                and len(value.users) == 1
            ):
                self.detached_output.add(value)

    def source_of(self, value: Any) -> tuple[str, int]:
        if value in self.detached_output:
            value = value.all_input_nodes[0]
        return self.ids[value]

    def add_outputs(self, output: Any) -> None:
        values = list(output.args[0])
        descs = list(output.meta.get("desc") or [None] * len(values))
        plain = [(d.idx, v) for v, d in zip(values, descs) if type(d).__name__ == "PlainAOTOutput"]
        loss = next((v for idx, v in plain if idx == 0), None)
        model_outputs = [v for idx, v in sorted(plain, key=lambda p: p[0]) if idx >= 1] or [loss]
        self.add_output_node("output", model_outputs, scope=[])
        self.add_output_node("loss", [loss], scope=["loss"])
        mutated = 0
        for value, desc in zip(values, descs):
            kind_name = type(desc).__name__
            if value is None or kind_name == "PlainAOTOutput":
                continue
            if kind_name == "GradAOTOutput":
                self.add_gradient(value, desc.grad_of)
            else:  # a buffer written in place (BatchNorm's running statistics)
                mutated += 1
                self.add_output_node(f"{kind_name}", [value], scope=[])
        if mutated:
            self.graph.notes.append(
                f"export: the graph also returns {mutated} mutated buffer(s) (e.g. BatchNorm running stats)"
            )

    def add_output_node(self, base: str, values: list[Any], *, scope: list[str]) -> None:
        node_id = self.fresh(base)
        sources = [self.source_of(v) for v in values if v is not None]
        outputs = [self.graph.node(s)["outputs"][p] for s, p in sources]
        self.graph.add_node(node_id, op="output", kind="output", scope=scope, outputs=outputs)
        for port, (src, src_port) in enumerate(sources):
            self.graph.add_edge(src, node_id, src_port=src_port, dst_port=port)
        self.graph.outputs.append(node_id)

    def add_gradient(self, value: Any, of: Any) -> None:
        """The gradient the graph returns for a parameter (or an input that requires grad)."""
        if type(of).__name__ == "PlainAOTInput" and not (
            of.idx < len(self.needs_grad) and self.needs_grad[of.idx]
        ):
            # On the meta device AOTAutograd differentiates inputs that do not require grad
            # (torch 2.13): a gradient nobody asked for is left out, with the ops computing it.
            return
        of_node = next((n for n, d in self.placeholder_descs() if d == of), None)
        target = self.ids[of_node][0] if of_node is not None else None
        tgt = self.graph.node(target) if target is not None else None
        node_id = self.fresh(f"{target}_grad" if target else "grad")
        src, src_port = self.source_of(value)
        self.graph.add_node(
            node_id,
            name=f"grad of {tgt['name']}" if tgt else None,
            op="grad_output",
            canonical_op="accumulate_grad",
            kind="output",
            scope=tgt["scope"] if tgt else [],
            outputs=[self.graph.node(src)["outputs"][src_port]],
            phase="backward",
            grad_of=target,
        )
        self.graph.add_edge(src, node_id, src_port=src_port)
        self.graph.outputs.append(node_id)

    def placeholder_descs(self) -> list[tuple[Any, Any]]:
        return [(n, n.meta.get("desc")) for n in self.gm.graph.nodes if n.op == "placeholder"]


def _without_model_prefix(path: str) -> str:
    return path.removeprefix(f"{_MODEL}.")


def _scope(stack: Any) -> list[str]:
    """A module path of the training step as the user's: ``model.hidden`` is ``hidden``; the
    step itself and its ``loss_fn`` module are ``loss``."""
    if not stack:
        return []
    path = common.scope_from_module_stack(stack)
    if path[:1] == [_MODEL]:
        return path[1:]
    if path[:1] == [_LOSS]:
        return ["loss", *path[1:]]
    return ["loss", *path]
