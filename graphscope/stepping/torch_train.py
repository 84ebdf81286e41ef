"""One PyTorch training step, stepped: the forward pass and the loss, then the backward pass,
every value summarised in the order autograd computed it (``step --fw torch --train``).

The forward pass and the loss run under the eager recorder with summaries, as ``step`` does; the
backward graph is read as ``trace --backward`` reads it (:mod:`graphscope.tracers.torch_autograd`);
then ``loss.backward()`` runs with a hook on every autograd node, which summarises the gradients
each node passes on (for ``AccumulateGrad``, the parameter's gradient) as it fires, so records
come in autograd's own order. A backward record's inputs are the gradients it received: a NaN or
an infinity is *born* at the autograd node that made it from finite gradients (the gradient of
``sqrt`` at 0), and its ``grad_of`` names the forward op, with that op's source line.

The step runs on a deep copy of the model: the user's model, its parameters and their ``.grad``
are left as they were. The optimizer's update is not stepped yet.
"""

from __future__ import annotations

import copy
from typing import Any

from graphscope import ir
from graphscope.errors import GraphscopeError
from graphscope.stepping import torch_eager
from graphscope.stepping.numerics import summarize_torch
from graphscope.stepping.records import Record, Steps
from graphscope.tracers import _torch_common as common
from graphscope.tracers import torch_autograd as autograd

__all__ = ["step_train"]


def step_train(
    model: Any,
    example_inputs: Any,
    *,
    name: str,
    example_targets: Any = None,
    loss_fn: Any = None,
    where: str = "the model",
) -> Steps:
    torch = common.require_torch()
    common.check_module(model, example_inputs, "step --train")
    model = copy.deepcopy(model)  # the step's gradients land on a copy
    inputs = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    targets = autograd._as_tuple(example_targets)
    autograd._check_trainable(torch, model, where)
    graph = ir.Graph(
        name,
        framework="torch",
        capture="eager",
        framework_version=torch.__version__,
        signature=common.signature_of(inputs),
    )
    recorder = autograd._grad_recorder_class()(graph, model, summaries=True, keep=frozenset())
    recorder.add_inputs(model, inputs)
    with common.quiet_torch_logs(), torch.enable_grad():
        hooks = recorder.install_module_hooks(model)
        try:
            with recorder:
                output = model(*inputs)
                recorder.see_outputs()
                recorder.add_output(output)
                recorder.add_targets(targets, loss_fn)
                loss = autograd._loss(torch, recorder, output, targets, loss_fn, where)
                recorder.see_outputs()
        except GraphscopeError:
            raise
        except Exception as exc:
            raise torch_eager.run_error(exc) from None
        finally:
            for h in hooks:
                h.remove()
        recorder.add_loss(loss)
        autograd._drop_autograd_detaches(graph)
        if loss.grad_fn is None:
            raise GraphscopeError(
                f"{where}: the loss does not depend on any parameter that requires grad "
                "(is the output detached, or computed under torch.no_grad()?)"
            )
        backward = autograd._Backward(torch, graph, recorder)
        backward.add(loss)
        records = [r for r in recorder.records if r.node in graph]
        _run_backward(torch, graph, backward, loss, records)
    for i, rec in enumerate(records):
        rec.index = i
    return Steps(
        graph, records, notes=["the optimizer's update is not stepped (forward, loss and backward are)"]
    )


def _run_backward(torch: Any, graph: ir.Graph, backward: Any, loss: Any, records: list[Record]) -> None:
    """``loss.backward()`` with a hook on every autograd node: one record per node, as it fires."""
    seed = next(n for n in graph.nx if graph.node(n)["op"] == "grad_seed")
    records.append(_record(graph, seed, [summarize_torch(torch.ones_like(loss))], None, []))
    senders: dict[str, dict[int, str]] = {}  # node -> dst_port -> the node that sends it a gradient
    for u, v, d in graph.edge_data():
        if graph.node(v)["phase"] == "backward" and graph.node(u)["phase"] == "backward":
            senders.setdefault(v, {}).setdefault(d["dst_port"], u)
    handles = []

    def hook_for(fn: Any, node_id: str) -> Any:
        accumulates = type(fn).__name__ == "AccumulateGrad"

        def hook(grad_inputs: Any, grad_outputs: Any) -> None:
            passed = grad_outputs if accumulates else grad_inputs
            received = [summarize_torch(g) if g is not None else None for g in grad_outputs]
            outputs = [summarize_torch(g) if g is not None else None for g in passed]
            ports = senders.get(node_id, {})
            records.append(
                _record(graph, node_id, outputs, received, [ports.get(i, "") for i in range(len(received))])
            )

        return hook

    try:
        for fn, node_id in backward.ids.items():
            handles.append(fn.register_hook(hook_for(fn, node_id)))
        loss.backward()
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
