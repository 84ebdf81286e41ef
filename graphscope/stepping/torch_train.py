"""One PyTorch training step, stepped: the forward pass and the loss, then the backward pass,
every value summarised in the order autograd computed it (``step --fw torch --train``).

The forward pass and the loss run under the eager recorder with summaries, as ``step`` does; the
backward graph is read as ``trace --backward`` reads it (:mod:`graphscope.tracers.torch_autograd`);
then ``loss.backward()`` runs with a hook on every autograd node, which summarises the gradients
each node passes on (for ``AccumulateGrad``, the parameter's gradient) as it fires, so records
come in autograd's own order. A backward record's inputs are the gradients it received and, when
it is not finite, the forward values it saved: a NaN or an infinity is *born* at the autograd node
that made it from finite gradients and finite saved values (the gradient of ``sqrt`` at 0), and
its ``grad_of`` names the forward op, with that op's source line; one made from a saved NaN came
from forward (``where(x > 0, sqrt(x), 0)``).

The step is taken on the user's model and undone (:class:`TrainingState`): its buffers are
copied before and written back after, and the parameters' ``.grad`` set aside, so the step
starts from no gradients, as training's ``zero_grad()`` does, and the model is left as it was
found. (A deep copy of model and optimizer would also copy the gradients, and keep two models
alive during the step.) With an ``optimizer`` in the model file, its update follows: one
``optimizer`` record per parameter, the new value, with the update-to-weight ratio in the
node's attributes. An optimizer of ``torch.optim`` that updates each parameter on its own
(:mod:`graphscope.stepping.torch_update`) is stepped during backward, a few parameters at a time
as their gradients are final, on clones of them and of their state, and each gradient is freed
once used: the step holds one chunk's copies, and not all the new gradients beside the user's.
Any other optimizer steps after backward on the parameters themselves, and the parameters and
its state are copied before and written back after.
"""

from __future__ import annotations

from typing import Any

from graphscope import ir
from graphscope.errors import GraphscopeError
from graphscope.stepping import torch_eager, torch_update
from graphscope.stepping.numerics import is_finite, summarize_torch
from graphscope.stepping.records import Record, Steps
from graphscope.tracers import _torch_common as common
from graphscope.tracers import torch_autograd as autograd

__all__ = ["TrainingState", "copy_tensors", "step_train"]


def step_train(
    model: Any,
    example_inputs: Any,
    *,
    name: str,
    example_targets: Any = None,
    loss_fn: Any = None,
    optimizer: Any = None,
    where: str = "the model",
) -> Steps:
    torch = common.require_torch()
    common.check_module(model, example_inputs, "step --train")
    if optimizer is not None:
        check_optimizer(torch, model, optimizer, where)
    state = TrainingState(torch, model, optimizer)
    # Parameters and optimizer state: a per-parameter optimizer steps stand-ins and never writes
    # them (torch_update); another's are copied just before its update, once backward has freed
    # the activations, so the copies do not add to the peak of the step.
    state.save(weights=False)
    notes = []
    update: _Update | None = None
    try:
        state.clear_grads()
        with common.quiet_torch_logs(), torch.enable_grad():
            graph, recorder, loss, backward = autograd.record_step(
                torch, model, example_inputs, example_targets, loss_fn, name=name, summaries=True, where=where
            )
            records = [r for r in recorder.records if r.node in graph]
            update = (
                _Update(torch, graph, recorder, model, optimizer, state) if optimizer is not None else None
            )
            _run_backward(torch, graph, backward, loss, records, update)
        if update is not None:
            update.finish(records)
        else:
            notes.append(
                "no optimizer in the model file: forward, loss and backward are stepped, not an update"
            )
    finally:
        state.restore()
    for i, rec in enumerate(records):
        rec.index = i
    return Steps(graph, records, notes=notes)


class TrainingState:
    """What a training step changes in a model and its optimizer, kept to be written back:
    the values of the parameters, the buffers (BatchNorm's running statistics) and the
    optimizer's state tensors, in copies made once and refreshed in place on every
    :meth:`save` (``torch._foreach_copy_``: one call, no allocation) while the tensors keep
    their shapes; the optimizer's state entries and hyperparameters; the ``.grad`` of each
    parameter (set aside, not copied). ``save(weights=False)`` keeps the buffers alone, and
    :meth:`save_weights` adds the parameters and the optimizer's state later."""

    def __init__(self, torch: Any, model: Any, optimizer: Any) -> None:
        self.torch = torch
        self.model = model
        self.optimizer = optimizer
        self.params = list(model.parameters()) if isinstance(model, torch.nn.Module) else []
        if optimizer is not None:  # a plain function's parameters are the optimizer's
            known = {id(p) for p in self.params}
            for group in optimizer.param_groups:
                self.params += [p for p in group["params"] if id(p) not in known]
                known.update(id(p) for p in group["params"])
        self.copies: list[Any] = []
        self.layout: list[tuple[Any, ...]] = []
        self.live: list[Any] = []
        self.grads: list[Any] = []
        self.entries: dict[Any, dict[Any, Any]] = {}
        self.weights_at = -1  # where the parameters start in ``live``; -1: not saved
        self.groups: list[dict[str, Any]] = []

    def _buffers(self) -> list[Any]:
        if isinstance(self.model, self.torch.nn.Module):
            return list(self.model.buffers())
        return []

    def _weights(self) -> list[Any]:
        tensors = list(self.params)
        if self.optimizer is not None:
            for entry in self.optimizer.state.values():
                tensors += [v for v in entry.values() if isinstance(v, self.torch.Tensor)]
        return tensors

    def save(self, *, weights: bool = True, grads: bool = True) -> None:
        """Keep the state; ``grads=False``: not the gradients (restore then clears them)."""
        torch = self.torch
        self.live = self._buffers() + (self._weights() if weights else [])
        layout = [(t.shape, t.dtype, t.device) for t in self.live]
        with torch.no_grad():
            if layout == self.layout:
                if self.live:
                    torch._foreach_copy_(self.copies, self.live)
            else:  # the first save, or the optimizer made its state (its first step)
                self.copies = copy_tensors(torch, self.live)
                self.layout = layout
        self.grads = [p.grad if grads else None for p in self.params]
        self.weights_at = len(self._buffers()) if weights else -1
        if weights:
            self._save_entries()

    @property
    def holds_weights(self) -> bool:
        """Whether the parameters and the optimizer's state were saved (and restore writes them)."""
        return self.weights_at >= 0

    def save_weights(self) -> None:
        """Add the parameters and the optimizer's state to a ``save(weights=False)``."""
        torch = self.torch
        weights = self._weights()
        self.weights_at = len(self.live)
        with torch.no_grad():
            self.copies += copy_tensors(torch, weights)
        self.live += weights
        self.layout = []  # not the layout of a full save
        self._save_entries()

    def _save_entries(self) -> None:
        if self.optimizer is not None:
            self.entries = {p: dict(entry) for p, entry in self.optimizer.state.items()}
            self.groups = [{k: v for k, v in g.items() if k != "params"} for g in self.optimizer.param_groups]

    def saved_params(self) -> dict[int, Any]:
        """id(parameter) -> its value when last saved."""
        if self.weights_at < 0:
            return {}
        return {id(p): copy for p, copy in zip(self.params, self.copies[self.weights_at :], strict=False)}

    def clear_grads(self) -> None:
        for p in self.params:
            p.grad = None

    def restore(self) -> None:
        """Write the saved values back into the same tensors (the optimizer's state tensors made
        since are dropped) and put the gradients back."""
        torch = self.torch
        with torch.no_grad():
            if self.live:
                torch._foreach_copy_(self.live, self.copies)
        for p, grad in zip(self.params, self.grads, strict=True):
            p.grad = grad
        if self.optimizer is not None and self.weights_at >= 0:
            self.optimizer.state.clear()
            self.optimizer.state.update({p: dict(entry) for p, entry in self.entries.items()})
            for group, saved in zip(self.optimizer.param_groups, self.groups, strict=True):
                group.update(saved)


def copy_tensors(torch: Any, tensors: list[Any]) -> list[Any]:
    """Copies of ``tensors``, the dense ones as views into one block per dtype and device.
    One block is one allocation the C library maps on its own (it is far above its threshold for
    that): hundreds of clones instead land in its heap, above the memory a training step frees
    and takes again, which it then hands back to the system and faults in again on every step
    (a ResNet-50 under AdamW: 35,000 page faults a step, a third of the step's time)."""
    copies: list[Any] = [None] * len(tensors)
    groups: dict[tuple[Any, Any], list[int]] = {}
    for i, t in enumerate(tensors):
        if t.layout == torch.strided and not t.is_quantized:
            groups.setdefault((t.dtype, t.device), []).append(i)
        else:
            copies[i] = t.detach().clone()
    for (dtype, device), at in groups.items():
        sizes = [tensors[i].numel() for i in at]
        block = torch.empty(sum(sizes), dtype=dtype, device=device)
        views = [part.view(tensors[i].shape) for i, part in zip(at, block.split(sizes), strict=True)]
        torch._foreach_copy_(views, [tensors[i].detach() for i in at])
        for i, view in zip(at, views, strict=True):
            copies[i] = view
    return copies


def check_optimizer(torch: Any, model: Any, optimizer: Any, where: str) -> None:
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise GraphscopeError(
            f"{where}: optimizer must be a torch.optim optimizer, not a {type(optimizer).__name__}"
        )
    mine = {id(p) for p in model.parameters()}
    theirs = [p for group in optimizer.param_groups for p in group["params"]]
    if not theirs or any(id(p) not in mine for p in theirs):
        raise GraphscopeError(
            f"{where}: the optimizer updates parameters that are not the model's "
            "(build it from model.parameters() of this model)"
        )


class _Update:
    """``optimizer.step()``: one ``optimizer`` node per parameter, its output the new value, with
    the update-to-weight ratio (|new - old| / |old|, Frobenius norms). A per-parameter optimizer
    (:mod:`torch_update`) is stepped on stand-ins a chunk at a time, during backward: :meth:`on_grad`
    is each parameter's post-accumulate-grad hook. Any other steps at once after backward, on
    the parameters themselves, undone with the rest by ``state``. Nodes and records are added by
    :meth:`finish`, in the order of the optimizer's groups."""

    def __init__(
        self, torch: Any, graph: ir.Graph, recorder: Any, model: Any, optimizer: Any, state: TrainingState
    ) -> None:
        self.torch, self.graph, self.recorder = torch, graph, recorder
        self.optimizer, self.state = optimizer, state
        self.names = {id(p): name for name, p in model.named_parameters()}
        # id(parameter) -> (outputs, inputs) summaries and the norms, until finish() adds the node
        self.seen: dict[int, tuple[list[Any], list[Any], float, float]] = {}
        self.chunked = (
            torch_update.ChunkedUpdate(torch, optimizer, self.visit, step=self.take_step)
            if torch_update.per_parameter(torch, optimizer)
            else None
        )

    def take_step(self) -> None:
        try:
            self.optimizer.step()
        except Exception as exc:
            raise torch_eager.run_error(exc) from None

    def on_grad(self, p: Any) -> None:
        if self.chunked is not None:
            self.chunked.add(p)

    def visit(self, p: Any, new: Any, old: Any = None) -> None:
        """Summarise the update of ``p`` to ``new`` (from ``old``: ``p`` itself by default)."""
        torch = self.torch
        old = p.detach() if old is None else old
        with torch.no_grad():
            weight = float(torch.linalg.vector_norm(old, dtype=torch.float64))
            update = float(torch.linalg.vector_norm(new - old, dtype=torch.float64))
            inputs = [summarize_torch(old), summarize_torch(p.grad) if p.grad is not None else None]
            self.seen[id(p)] = ([summarize_torch(new)], inputs, weight, update)

    def finish(self, records: list[Record]) -> None:
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        if self.chunked is not None:
            self.chunked.finish()
        else:
            self.state.save_weights()
            before = self.state.saved_params()
            self.take_step()
            for p in params:
                self.visit(p, p.detach(), before[id(p)])
        kind = type(self.optimizer).__name__
        graph = self.graph
        for p in params:
            src = self.recorder.source_of_tensor(p)
            if src is None:
                continue
            outputs, inputs, weight, update = self.seen[id(p)]
            node_id = self.recorder.fresh_id(f"{src[0]}_update")
            graph.add_node(
                node_id,
                name=self.names.get(id(p), src[0]),
                op=f"optimizer:{kind}",
                canonical_op="optimizer_update",
                kind="op",
                scope=graph.node(src[0])["scope"],
                outputs=common.tensor_outputs(p),
                attrs={
                    "update_to_weight": update / weight if weight > 0 else None,
                    "update_norm": update,
                    "weight_norm": weight,
                },
                phase="optimizer",
                grad_of=src[0],
            )
            graph.add_edge(src[0], node_id)
            grad = f"{src[0]}_grad"
            if grad in graph:
                graph.add_edge(grad, node_id, dst_port=1)
            records.append(_record(graph, node_id, outputs, inputs, [src[0], grad]))


def _run_backward(
    torch: Any, graph: ir.Graph, backward: Any, loss: Any, records: list[Record], update: _Update | None
) -> None:
    """``loss.backward()`` with a hook on every autograd node: one record per node, as it fires;
    and ``update.on_grad`` on each of the optimizer's parameters once its gradient is final."""
    seed = next(n for n in graph.nx if graph.node(n)["op"] == "grad_seed")
    records.append(_record(graph, seed, [summarize_torch(torch.ones_like(loss))], None, []))
    senders: dict[str, dict[int, str]] = {}  # node -> dst_port -> the node that sends it a gradient
    saves: dict[str, list[tuple[str, int]]] = {}  # node -> the forward values it saved (node, port)
    for u, v, d in graph.edge_data():
        if graph.node(v)["phase"] == "backward":
            if graph.node(u)["phase"] == "backward":
                senders.setdefault(v, {}).setdefault(d["dst_port"], u)
            elif not d["control"]:
                saves.setdefault(v, []).append((u, d["src_port"]))
    forward = {r.node: r for r in records}
    handles = []
    # A gradient one node passes on is, unless autograd summed several, the very tensor the next
    # node receives (AccumulateGrad's are its own): summarised once, found again by identity,
    # while its version counter says it was not changed in place since.
    from torch.utils.weak import WeakTensorKeyDictionary

    known: Any = WeakTensorKeyDictionary()

    def summary(g: Any) -> dict[str, Any] | None:
        if g is None:
            return None
        seen = known.get(g)
        if seen is not None and seen[0] == g._version:
            return dict(seen[1])
        out = summarize_torch(g)
        known[g] = (g._version, out)
        return out

    def hook_for(fn: Any, node_id: str) -> Any:
        accumulates = type(fn).__name__ == "AccumulateGrad"

        def hook(grad_inputs: Any, grad_outputs: Any) -> None:
            passed = grad_outputs if accumulates else grad_inputs
            received = [summary(g) for g in grad_outputs]
            outputs = [summary(g) for g in passed]
            ports = senders.get(node_id, {})
            sent_by = [ports.get(i, "") for i in range(len(received))]
            if not all(is_finite(s) for s in outputs):
                # Not finite: the forward values it saved are inputs too (sqrt's gradient reads
                # sqrt's output), to tell a NaN born here from one the forward pass saved.
                for src, port in saves.get(node_id, []):
                    rec = forward.get(src)
                    received.append(rec.outputs[port] if rec and port < len(rec.outputs) else None)
                    sent_by.append(src)
            records.append(_record(graph, node_id, outputs, received, sent_by))

        return hook

    try:
        for fn, node_id in backward.ids.items():
            handles.append(fn.register_hook(hook_for(fn, node_id)))
        if update is not None and update.chunked is not None:
            for group in update.optimizer.param_groups:
                handles += [
                    p.register_post_accumulate_grad_hook(update.on_grad)
                    for p in group["params"]
                    if p.requires_grad
                ]
        loss.backward()
    except GraphscopeError:
        raise
    except Exception as exc:
        raise torch_eager.run_error(exc) from None
    finally:
        for h in handles:
            h.remove()


def _record(
    graph: ir.Graph,
    node_id: str,
    outputs: list[dict[str, Any] | None],
    inputs: list[dict[str, Any] | None] | None,
    input_nodes: list[str],
) -> Record:
    n = graph.node(node_id)
    return Record(
        index=0,
        node=node_id,
        op=n["op"],
        scope=list(n["scope"]),
        source=n["source"],
        outputs=outputs,
        inputs=inputs,
        input_nodes=input_nodes,
    )
