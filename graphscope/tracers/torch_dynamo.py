"""TorchDynamo: the FX graphs ``torch.compile`` would hand a backend, and where it broke the graph.

Captured through ``torch._dynamo.explain``, PyTorch's own report of what Dynamo did. The IR's
top level is the run as Dynamo saw it, in order: ``graph_0 -> break_0 -> graph_1 -> ...``;
each ``graph_N`` node runs subgraph ``graph_N`` (the FX graph itself), each ``break_N`` node
carries the break's reason and user source line, which are also in the graph's notes.
"""

from __future__ import annotations

import re
from typing import Any

from graphscope import ir
from graphscope.errors import CaptureError
from graphscope.tracers import _torch_common as common

_PLAIN_BREAKS = [
    ("generic_jump", "the code branches on a tensor's value"),
    ("Data-dependent jump", "the code branches on a tensor's value"),
    ("builtin operator `print`", "print() is called"),
]
_PARAM = re.compile(r"(parameters|buffers)_")
_LEAF = re.compile(r"_(parameters|buffers)_(\w+?)_$")


def capture(model: Any, example_inputs: tuple[Any, ...], *, name: str, method: str = "dynamo") -> ir.Graph:
    torch = common.require_torch()
    common.check_module(model, example_inputs, "dynamo")
    import torch._dynamo  # noqa: F811  (a submodule, not loaded by `import torch`)

    torch._dynamo.reset()
    try:
        with common.model_left_untouched(model), common.quiet_torch_logs():
            try:
                explained = torch._dynamo.explain(model)(*example_inputs)
            except Exception as exc:
                raise common.capture_error("TorchDynamo", exc) from None
    finally:
        torch._dynamo.reset()  # no compiled code or guards left behind in the user's process
    if not explained.graphs:
        # Nothing to show is no capture: say why, so that the default falls back to a method
        # that captures the model and a refusal never sends the user here.
        why = _why_no_graph(model, example_inputs) or "the model ran entirely in Python"
        raise CaptureError(f"TorchDynamo captured no graph: {why}")

    graph = ir.Graph(
        name,
        framework="torch",
        capture="dynamo",
        framework_version=torch.__version__,
        signature=common.signature_of(example_inputs),
    )
    previous = None
    for i, _value in enumerate(example_inputs):
        node_id = f"input_{i}"
        graph.add_node(
            node_id,
            op="input",
            canonical_op="placeholder",
            kind="input",
            outputs=common.tensor_outputs(_value),
        )
        graph.inputs.append(node_id)
    breaks = list(explained.break_reasons)
    for i, gm in enumerate(explained.graphs):
        sub_name = f"graph_{i}"
        sub = ir.Graph(sub_name, framework="torch", capture="dynamo", framework_version=torch.__version__)
        common.convert_fx_graph(
            gm,
            sub,
            value_of=lambda n: n.meta.get("example_value"),
            kind_of=_kind_of,
            scope_of=_scope_of,
            name_of=_name_of,
        )
        graph.subgraphs[sub_name] = sub
        n_ops = sum(1 for n in sub.nodes() if n["kind"] == "op")
        graph.add_node(
            sub_name,
            op="dynamo:graph",
            canonical_op="call",
            kind="op",
            outputs=[o for out in sub.outputs for o in sub.node(out)["outputs"]],
            attrs={"ops": n_ops},
            subgraphs=[sub_name],
        )
        if previous is None:
            for inp in graph.inputs:
                graph.add_edge(inp, sub_name, dst_port=graph.inputs.index(inp))
        else:
            graph.add_edge(previous, sub_name)
        previous = sub_name
        if i < len(breaks):
            reason = breaks[i]
            brk = f"break_{i}"
            text, source = _describe_break(reason)
            graph.add_node(
                brk,
                op="dynamo:graph_break",
                canonical_op="graph_break",
                kind="control",
                attrs={"reason": text},
                source=source,
            )
            graph.add_edge(sub_name, brk)
            where = f" at {source['file']}:{source['line']}" if source else ""
            graph.notes.append(f"dynamo: graph break {i + 1}{where}: {text}")
            previous = brk
    graph.add_node("output", op="output", kind="output")
    if previous is not None:
        graph.add_edge(previous, "output")
    graph.outputs.append("output")
    return graph


def _why_no_graph(model: Any, example_inputs: tuple[Any, ...]) -> str | None:
    """Why Dynamo captured nothing: ``explain`` lists no break when the very first call it
    meets is skipped (``pack_padded_sequence`` is on Dynamo's skip list), so ask again with
    ``fullgraph=True``, which raises that reason with the user's line."""
    import torch

    torch._dynamo.reset()
    try:
        with common.model_left_untouched(model), common.quiet_torch_logs():
            try:
                torch.compile(model, fullgraph=True, backend="eager")(*example_inputs)
            except Exception as exc:
                text = str(exc).split("\n\nfrom user code:")[0].split("\n\n")[0]
                text, _ = _describe_break(" ".join(ln for ln in text.splitlines() if "Hint:" not in ln))
                where = common.user_frame(exc)
                if where is None:
                    for frame in getattr(exc, "real_stack", None) or []:
                        if common.is_user_file(frame.filename):
                            where = f"{common.relative(frame.filename)}:{frame.lineno}"
                return f"{text.rstrip('.')}{f' (at {where})' if where else ''}"
    finally:
        torch._dynamo.reset()
    return None


def _describe_break(reason: Any) -> tuple[str, dict[str, Any] | None]:
    text = " ".join(str(getattr(reason, "reason", reason)).split())
    text = common.plain_words(
        text.split(" Hint:")[0].replace(" Explanation: ", ": "), _PLAIN_BREAKS, limit=300
    )
    source = None
    for frame in getattr(reason, "user_stack", None) or []:
        if common.is_user_file(frame.filename):
            source = {"file": common.relative(frame.filename), "line": int(frame.lineno or 0)}
    return text, source


def _kind_of(node: Any) -> str:
    if node.op == "placeholder":
        import torch

        value = node.meta.get("example_value")
        if isinstance(value, torch.nn.Parameter) or _PARAM.search(node.name):
            return "param"
        return "input"
    return common.default_kind(node)


def _scope_of(node: Any) -> list[str]:
    if node.op == "placeholder" and _kind_of(node) == "input":
        return []
    return common.scope_from_module_stack(node.meta.get("nn_module_stack"))


def _name_of(node: Any) -> str:
    """``l_self_modules_fc1_parameters_weight_`` -> ``fc1.weight`` (its module path + leaf)."""
    match = _LEAF.search(node.name)
    if node.op == "placeholder" and match and _kind_of(node) == "param":
        return ".".join([*_scope_of(node), match.group(2)])
    return str(node.name)
