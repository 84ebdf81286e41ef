"""What the PyTorch tracers share: FX graph -> IR, shapes from tensors, scopes, source lines,
errors that point at the user's code, and leaving the model as it was found."""

from __future__ import annotations

import contextlib
import re
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from graphscope import _gc, ir
from graphscope.errors import CaptureError, GraphscopeError
from graphscope.tracers._source import _is_model_library, is_user_file, relative, source_of_frames

_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


def source_from_stack(stack_trace: str | None) -> dict[str, Any] | None:
    """The innermost user frame of an FX ``stack_trace`` string (else a model library's, such
    as transformers' ``modeling_gpt2.py``), as ``{file, line}``."""
    if not stack_trace:
        return None
    return source_of_frames(reversed(_FRAME.findall(stack_trace)))


def innermost_user_frame(frame: Any) -> dict[str, Any] | None:
    """The first frame of the user's own code from ``frame`` outwards, as ``{file, line}``."""
    while frame is not None:
        filename = frame.f_code.co_filename
        if is_user_file(filename):
            return {"file": relative(filename), "line": frame.f_lineno}
        frame = frame.f_back
    return None


def user_frame(exc: BaseException) -> str | None:
    """``model.py:14`` — the last user-code location in an exception's traceback or message;
    when the failure lies further in, in a model library the user's code called (transformers'
    ``modeling_gpt2.py``), ``modeling_gpt2.py:880, called from model.py:14``."""
    where = library = None
    frames = [(f.filename, f.lineno) for f in traceback.extract_tb(exc.__traceback__)]
    for filename, line in frames + [(f, int(n)) for f, n in _FRAME.findall(str(exc))]:
        if is_user_file(filename):
            where, library = f"{relative(filename)}:{line}", None
        elif where is not None and _is_model_library(filename):
            library = f"{relative(filename)}:{line}"
    return f"{library}, called from {where}" if library else where


def capture_error(method: str, exc: BaseException) -> CaptureError:
    """One sentence: what failed and where in the user's code. Which method to try instead is
    said by the caller (tracers.choice), which knows what was tried and what captured."""
    reason = plain_words(framework_reason(exc), _PLAIN_REASONS, limit=240)
    where = user_frame(exc)
    at = f" (at {where})" if where else ""
    return CaptureError(f"{method} cannot capture this model: {reason.rstrip('.')}{at}")


def model_raised(exc: BaseException) -> GraphscopeError:
    """One sentence for a model that raised on its example inputs: what, and where in its code."""
    reason = f"{type(exc).__name__}: {framework_reason(exc)}".rstrip(": ")
    where = user_frame(exc)
    at = f" at {where}" if where else ""
    return GraphscopeError(f"the model raised {cut(reason, 240)}{at} on its example inputs")


def framework_reason(exc: BaseException) -> str:
    """The first line of a framework's message, on one line, with tensor values elided.

    A message that quotes a value (``Tracer cannot infer type of {'a': tensor([[-1.05, ...``)
    runs over several lines: those are read until the brackets close, the tensors' numbers
    left out, and a continuation line that starts with ``:`` (the reason after the value) kept.
    """
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    text, rest = lines[0], lines[1:]
    if _SCHEMA.match(text) and rest and not rest[0].startswith("File "):
        # TorchScript opens with the schema it was checking ("forward(Linear self, Tensor
        # input) -> Tensor:"); the reason is the line after it.
        text, rest = rest[0], rest[1:]
    while rest and _depth(text) > 0:
        text += " " + rest.pop(0)
    if rest and rest[0].startswith(":") and rest[0] != ":":
        text += " " + rest[0]
    # "... is not supported:" introduces the code location, which is said apart; an object's
    # address ("<function f at 0x7f...>") changes from run to run
    return _ADDRESS.sub(">", _TENSOR_VALUE.sub("tensor(…)", text)).rstrip(" :")


def cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters at a word boundary, with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    space = text.rfind(" ", 0, limit)
    head = text[:space] if space > limit // 2 else text[: limit - 1]
    return head.rstrip(" ,;:") + "…"


def _depth(text: str) -> int:
    return sum(text.count(c) for c in "([{") - sum(text.count(c) for c in ")]}")


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+>")

# A TorchScript schema line: "forward(__torch__.Linear self, Tensor input) -> Tensor:".
_SCHEMA = re.compile(r"^[\w.:]+\(.*\) -> .*:$")

# A tensor's repr, as far as its numbers go: "tensor([[-0.85,  0.43], [ 0.01, -0.65]], grad_fn=<...>)".
_TENSOR_VALUE = re.compile(r"tensor\(\[[-+\d.eE,\s\[\]naif]*\](?:, [^()]*?)?\)")


def plain_words(text: str, table: list[tuple[str, str]], *, limit: int) -> str:
    """One line: the framework's message, prefixed with plain words when it is a known one."""
    text = re.sub(r"\s+", " ", text).strip()
    for needle, plain in table:
        if needle in text:
            text = f"{plain} ({text})"
            break
    return cut(text, limit)


_PLAIN_REASONS = [
    ("cannot be used as inputs to control flow", "the model branches or loops on a traced value"),
    ("data-dependent", "the model's control flow depends on a tensor's value"),
    ("Dynamic control flow is not supported", "the model's control flow depends on a tensor's value"),
]


@contextlib.contextmanager
def quiet_torch_logs() -> Iterator[None]:
    """Keep a capture's noise out of the report.

    torch logs, and prints to stderr, whole partial graphs when a capture fails; we report the
    failure as one sentence instead, so what was written to stderr is shown only on success.
    The model's own prints go to stderr, so that ``--json`` keeps stdout to one document.
    """
    import io
    import logging

    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    real_stderr = sys.stderr
    held = io.StringIO()
    try:
        with contextlib.redirect_stdout(held), contextlib.redirect_stderr(held):
            yield
    except BaseException:
        raise
    else:
        real_stderr.write(held.getvalue())
    finally:
        logging.disable(previous)


def dtype_name(dtype: Any) -> str:
    """``torch.float32`` -> ``"float32"``."""
    return str(dtype).removeprefix("torch.")


def dim(d: Any) -> int | str | None:
    if isinstance(d, int):
        return d
    try:
        return int(d)  # a SymInt with a known value
    except Exception:
        return str(d)


def tensor_outputs(value: Any) -> list[dict[str, Any]]:
    """Shapes and dtypes of a (fake) tensor, or of each tensor in a tuple/list of them."""
    import torch

    if value is None:
        return []
    if isinstance(value, torch.Size):
        return [{"shape": [len(value)], "dtype": "int64"}]
    if isinstance(value, torch.Tensor):
        return [{"shape": [dim(d) for d in value.shape], "dtype": dtype_name(value.dtype)}]
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        # fx.passes.shape_prop.TensorMetadata (a NamedTuple, so before the tuple case)
        return [{"shape": [dim(d) for d in value.shape], "dtype": dtype_name(value.dtype)}]
    if isinstance(value, (list, tuple)):
        out: list[dict[str, Any]] = []
        for v in value:
            if isinstance(v, (list, tuple)) or v is None or hasattr(v, "shape"):
                out.extend(tensor_outputs(v) or [{"shape": None, "dtype": None}])
            else:
                out.append({"shape": [], "dtype": type(v).__name__})
        return out
    if isinstance(value, (int, float, bool)):
        return [{"shape": [], "dtype": {bool: "bool", int: "int64", float: "float64"}[type(value)]}]
    return [{"shape": None, "dtype": None}]


_DYNAMO_ROOT = re.compile(r"^L\[['\"][^'\"]+['\"]\]\.?|^L__self__\.?")


def scope_from_module_stack(stack: Any) -> list[str]:
    """The deepest module path in an ``nn_module_stack`` meta, split on dots."""
    if not stack:
        return []
    values = list(stack.values())
    path = values[-1][0] if isinstance(values[-1], tuple) else str(values[-1])
    path = _DYNAMO_ROOT.sub("", str(path))
    path = path.replace("._modules['", ".").replace("']", "")
    return [p for p in path.split(".") if p]


def module_attrs(module: Any) -> dict[str, Any]:
    """The plain-valued configuration of an ``nn.Module`` (``in_features``, ``kernel_size``...)."""
    out: dict[str, Any] = {}
    for key, value in vars(module).items():
        if key.startswith("_") or key == "training":
            continue
        if isinstance(value, (int, float, bool, str)) or (
            isinstance(value, tuple) and all(isinstance(v, (int, float, bool)) for v in value)
        ):
            out[key] = value
    return out


def literal(value: Any) -> Any:
    """A JSON-safe stand-in for a non-tensor argument (dtype, device, slice...)."""
    import torch

    if isinstance(value, (torch.dtype, torch.device, torch.memory_format, torch.layout)):
        return str(value).removeprefix("torch.")
    if isinstance(value, slice):
        return {"slice": [value.start, value.stop, value.step]}
    if isinstance(value, (list, tuple)):
        return [literal(v) for v in value]
    if isinstance(value, dict):
        return {str(k): literal(v) for k, v in value.items()}
    if isinstance(value, (int, float, bool, str)) or value is None:
        return value
    return repr(value)


def op_name(node: Any, root: Any = None) -> str:
    """The FX node's op as users know it: ``call_module:Linear``, ``aten.linear.default``..."""
    target = node.target
    if node.op == "call_module":
        sub = root.get_submodule(target) if root is not None else None
        return f"call_module:{type(sub).__name__ if sub is not None else target}"
    if node.op == "call_function":
        if hasattr(target, "_schema") or type(target).__name__ in ("OpOverload", "OpOverloadPacket"):
            return str(target)  # aten.linear.default
        name = getattr(target, "__name__", None) or str(target)
        module = getattr(target, "__module__", "") or ""
        if module == "_operator":
            return f"operator.{name}"
        return f"call_function:{name}"
    if node.op == "call_method":
        return f"call_method:{target}"
    return str(node.op)


def convert_fx_graph(
    gm: Any,
    graph: ir.Graph,
    *,
    value_of: Callable[[Any], Any],
    kind_of: Callable[[Any], str] | None = None,
    name_of: Callable[[Any], str] | None = None,
    scope_of: Callable[[Any], list[str]] | None = None,
    outputs_of: Callable[[Any], list[dict[str, Any]] | None] | None = None,
) -> None:
    """Add every node of ``gm.graph`` to ``graph``, with edges, shapes, scopes and sources.

    ``value_of(node)`` returns the (fake) value recorded for the node: ``tensor_meta`` for
    ``fx``, ``val`` for ``export``, ``example_value`` for Dynamo.
    """
    with _gc.paused():
        _convert_fx_nodes(
            gm,
            graph,
            value_of=value_of,
            kind_of=kind_of,
            name_of=name_of,
            scope_of=scope_of,
            outputs_of=outputs_of,
        )


def _convert_fx_nodes(
    gm: Any,
    graph: ir.Graph,
    *,
    value_of: Callable[[Any], Any],
    kind_of: Callable[[Any], str] | None,
    name_of: Callable[[Any], str] | None,
    scope_of: Callable[[Any], list[str]] | None,
    outputs_of: Callable[[Any], list[dict[str, Any]] | None] | None,
) -> None:
    for node in gm.graph.nodes:
        kind = kind_of(node) if kind_of else default_kind(node)
        attrs: dict[str, Any] = {}
        if node.op == "call_module":
            attrs.update(module_attrs(gm.get_submodule(node.target)))
            attrs["target"] = node.target
        elif node.op in ("call_function", "call_method"):
            consts = [(i, a) for i, a in enumerate(node.args) if not _has_node(a)]
            attrs.update({f"arg{i}": literal(a) for i, a in consts})
            attrs.update({k: literal(v) for k, v in node.kwargs.items() if not _has_node(v)})
        elif node.op == "get_attr":
            attrs["target"] = node.target
        if outputs_of is not None:
            outputs = outputs_of(node) or []
        else:
            value = value_of(node)
            if node.op == "output":
                value = [value_of(a) for a in node.all_input_nodes]
            outputs = tensor_outputs(value)
        stack = node.meta.get("nn_module_stack")
        if scope_of is not None:
            scope = scope_of(node)
        elif node.op == "call_module":
            scope = str(node.target).split(".")
        else:
            scope = scope_from_module_stack(stack)
        graph.add_node(
            node.name,
            name=name_of(node) if name_of else node.name,
            op=op_name(node, gm),
            canonical_op={"param": "variable", "const": "const"}.get(kind),
            kind=kind,
            scope=scope,
            outputs=outputs,
            attrs=attrs,
            source=node.meta.get("graphscope_source")
            or source_from_stack(node.meta.get("stack_trace") or node.stack_trace),
        )
        for port, arg in enumerate(node.all_input_nodes):
            graph.add_edge(arg.name, node.name, dst_port=port)
        if node.op == "placeholder" and kind == "input":
            graph.inputs.append(node.name)
        if node.op == "output":
            graph.outputs.append(node.name)


def _has_node(value: Any) -> bool:
    import torch.fx

    found = False

    def visit(v: Any) -> Any:
        nonlocal found
        found = True
        return v

    torch.fx.node.map_arg(value, visit)
    return found


def default_kind(node: Any) -> str:
    """An FX node's kind from its opcode alone."""
    if node.op == "placeholder":
        return "input"
    if node.op == "output":
        return "output"
    if node.op == "get_attr":
        return "param"
    return "op"


@contextlib.contextmanager
def model_left_untouched(model: Any) -> Iterator[None]:
    """Restore the model's buffers, training flags and the RNG state after capture.

    Capture runs the model (shape recording, tracing): a BatchNorm in training mode would
    update its running statistics and dropout would advance the RNG. Buffers are small and
    are copied; parameters are large, so only their version counters are checked (a forward
    pass that writes its own weights in place is reported, not silently undone).
    """
    import torch

    rng = torch.get_rng_state()
    is_module = isinstance(model, torch.nn.Module)
    modules = list(model.modules()) if is_module else []
    training = [m.training for m in modules]
    # A meta buffer holds no data to keep or compare (a model built on the meta device).
    buffers = (
        {k: (v, v.detach().clone()) for k, v in model.named_buffers() if not v.is_meta} if is_module else {}
    )
    params = {k: (v, v._version) for k, v in model.named_parameters()} if is_module else {}
    try:
        yield
    finally:
        torch.set_rng_state(rng)
        for m, flag in zip(modules, training):
            m.training = flag
        with torch.no_grad():
            # Kernels such as batch_norm write running stats without bumping _version: compare.
            for tensor, saved in buffers.values():
                if tensor.shape == saved.shape and not torch.equal(tensor, saved):
                    tensor.copy_(saved)
        changed = [k for k, (p, version) in params.items() if p._version != version]
        if changed:
            warnings.warn(
                f"the model wrote its own parameters while being captured: {', '.join(changed[:5])}",
                stacklevel=3,
            )


def signature_of(inputs: Any) -> list[dict[str, Any]]:
    """The example inputs' shapes and dtypes, recorded on the graph."""
    return [o for v in inputs for o in tensor_outputs(v)] if inputs else []


def require_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise GraphscopeError(
            "capturing a PyTorch model needs PyTorch: pip install 'graphscope[torch]'"
        ) from None
    return torch


def check_module(model: Any, inputs: Any, method: str) -> None:
    torch = require_torch()
    if not isinstance(model, torch.nn.Module) and not callable(model):
        raise GraphscopeError(f"{method} needs an nn.Module or a function, not a {type(model).__name__}")
    if inputs is None:
        raise GraphscopeError(f"{method} needs example inputs to run the model with")
