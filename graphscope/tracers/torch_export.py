"""``torch.export.export``: the ATen-level graph, with parameters and buffers as nodes."""

from __future__ import annotations

from typing import Any

from graphscope import ir
from graphscope.tracers import _torch_common as common


def capture(model: Any, example_inputs: tuple[Any, ...], *, name: str, method: str = "export") -> ir.Graph:
    return to_ir(export_program(model, example_inputs), example_inputs, name=name)


def export_program(model: Any, example_inputs: tuple[Any, ...]) -> Any:
    """``torch.export.export`` with graphscope's error messages; the ExportedProgram."""
    torch = common.require_torch()
    common.check_module(model, example_inputs, "export")
    module = model if isinstance(model, torch.nn.Module) else _Wrap(model)
    with common.model_left_untouched(module), common.quiet_torch_logs():
        try:
            ep = torch.export.export(module, tuple(example_inputs))
        except Exception as exc:
            raise common.capture_error("torch.export", exc) from None
    return ep


def to_ir(ep: Any, example_inputs: tuple[Any, ...], *, name: str) -> ir.Graph:
    """The IR of an ExportedProgram."""
    import torch

    # Placeholders are parameters, buffers, constants or the user's inputs: the signature says which.
    roles: dict[str, tuple[str, str | None]] = {}
    for spec in ep.graph_signature.input_specs:
        arg_name = getattr(spec.arg, "name", None)
        if arg_name is None:
            continue
        kind = spec.kind.name  # USER_INPUT, PARAMETER, BUFFER, CONSTANT_TENSOR, ...
        role = "input" if kind == "USER_INPUT" else ("const" if kind.startswith("CONSTANT") else "param")
        roles[arg_name] = (role, spec.target)

    def kind_of(node: Any) -> str:
        if node.op == "placeholder":
            return roles.get(node.name, ("input", None))[0]
        if node.op == "output":
            return "output"
        if node.op == "get_attr":
            return "param"
        return "op"

    def name_of(node: Any) -> str:
        if node.op == "placeholder":
            target = roles.get(node.name, ("input", None))[1]
            return target or node.name
        return str(node.name)

    def scope_of(node: Any) -> list[str]:
        if node.op == "placeholder":
            target = roles.get(node.name, ("input", None))[1]
            return target.split(".")[:-1] if target else []
        return common.scope_from_module_stack(node.meta.get("nn_module_stack"))

    graph = ir.Graph(
        name,
        framework="torch",
        capture="export",
        framework_version=torch.__version__,
        signature=common.signature_of(example_inputs),
    )
    common.convert_fx_graph(
        ep.graph_module,
        graph,
        value_of=lambda n: n.meta.get("val"),
        kind_of=kind_of,
        name_of=name_of,
        scope_of=scope_of,
    )
    # The graph's outputs include mutated buffers; mark what the user gets back.
    user_outputs = [
        getattr(s.arg, "name", None) for s in ep.graph_signature.output_specs if s.kind.name == "USER_OUTPUT"
    ]
    mutated = len(ep.graph_signature.output_specs) - len(user_outputs)
    if mutated:
        graph.notes.append(
            f"export: the graph also returns {mutated} mutated buffer(s) (e.g. BatchNorm running stats)"
        )
    return graph


def _Wrap(fn: Any) -> Any:
    """Export takes modules; a plain function is wrapped in one."""
    import torch

    class Function(torch.nn.Module):
        def forward(self, *args: Any) -> Any:
            return fn(*args)

    return Function()
