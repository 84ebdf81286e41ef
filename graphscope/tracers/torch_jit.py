"""TorchScript: ``torch.jit.trace`` (what one run did) and ``torch.jit.script`` (the code).

TorchScript graphs are read from ``inlined_graph``. ``prim::If`` and ``prim::Loop`` blocks
become IR subgraphs named ``<node>.then`` / ``<node>.else`` / ``<node>.body``; values a block
uses from outside appear inside it as ``input`` nodes with ``attrs.captured`` set, except
constants and module attributes. Those are placed in each graph that uses them, just before
their first use: a ``const`` node, or a ``param`` node named by its module path (for
``prim::GetAttr``). TorchScript hoists every constant to the top of the graph; a constant used
five blocks deep would otherwise be passed in through all five. A block that returns nothing
has no ``output`` node.
"""

from __future__ import annotations

import functools
import os
import re
import warnings
from collections import Counter
from typing import Any

from graphscope import _gc, ir
from graphscope.errors import GraphscopeError
from graphscope.tracers import _torch_common as common

_TRACE_FRAME = re.compile(r"^(.+?)\((\d+)\): ", re.M)
_SCRIPT_FRAME = re.compile(r'File "([^"]+)", line (\d+)')

_SCALAR_TYPES = {
    "Float": "float32",
    "Double": "float64",
    "Half": "float16",
    "BFloat16": "bfloat16",
    "Long": "int64",
    "Int": "int32",
    "Short": "int16",
    "Char": "int8",
    "Byte": "uint8",
    "Bool": "bool",
    "ComplexFloat": "complex64",
    "ComplexDouble": "complex128",
}
_PY_TYPES = {"int": "int64", "float": "float64", "bool": "bool", "number": "float64"}

BLOCK_NAMES = {"prim::If": ("then", "else"), "prim::Loop": ("body",)}
# The node kinds that own blocks (asking every node for its blocks is slow, see below).
BLOCK_KINDS = frozenset({"prim::If", "prim::Loop", "prim::Closure", "prim::With"})


def capture(
    model: Any, example_inputs: tuple[Any, ...] | None, *, name: str, method: str = "jit-trace"
) -> ir.Graph:
    torch = common.require_torch()
    notes: list[str] = []
    if isinstance(model, (torch.jit.ScriptModule, torch.jit.ScriptFunction)):
        scripted = model  # a TorchScript archive or an already scripted model: read, don't rerun
        method = "jit-script"
    elif method == "jit-script":
        common.check_module(model, example_inputs or (), "jit-script")
        with common.model_left_untouched(model):
            try:
                scripted = torch.jit.script(model)
            except Exception as exc:
                raise common.capture_error(
                    "torch.jit.script", exc, "try --method export or --method dynamo"
                ) from None
    else:
        common.check_module(model, example_inputs, "jit-trace")
        with (
            common.model_left_untouched(model),
            common.quiet_torch_logs(),
            warnings.catch_warnings(record=True) as caught,
        ):
            warnings.simplefilter("always")
            try:
                scripted = torch.jit.trace(model, tuple(example_inputs or ()), check_trace=False)
            except Exception as exc:
                raise common.capture_error(
                    "torch.jit.trace", exc, "try --method export or --method jit-script"
                ) from None
        notes.extend(_tracer_notes(caught))

    # `inlined_graph` is computed on each access (hasattr would compute it too): read it once.
    ts_graph = getattr(scripted, "inlined_graph", None) or scripted.graph
    graph = ir.Graph(
        name,
        framework="torch",
        capture=method,
        framework_version=torch.__version__,
        signature=common.signature_of(example_inputs) if example_inputs else None,
        notes=notes,
    )
    tensors = {}
    if isinstance(scripted, torch.nn.Module):
        tensors = {**dict(scripted.named_buffers()), **dict(scripted.named_parameters())}
    with _gc.paused():
        try:
            converter = _Converter(graph, traced=method == "jit-trace", tensors=tensors)
            if method == "jit-script":
                converter.use_printed_sources(str(ts_graph))
            converter.convert_graph(ts_graph)
        except RuntimeError as exc:
            # A damaged archive can load, then fail in torch's C++ when the graph's debug
            # information (source ranges, unpickled lazily) is read.
            first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
            raise GraphscopeError(
                f"the TorchScript graph cannot be read (a damaged archive?): {first}"
            ) from None
    if example_inputs and method == "jit-script":
        # A scripted graph types its inputs as plain Tensor; the example inputs say more.
        known = common.signature_of(example_inputs)
        for node_id, meta in zip(graph.inputs, known):
            node = graph.node(node_id)
            if node["outputs"] and node["outputs"][0]["shape"] is None:
                node["outputs"] = [meta]
    return graph


def _tracer_notes(caught: list[warnings.WarningMessage]) -> list[str]:
    """TracerWarnings say where the trace specialised on a value: keep them, once each."""
    notes: list[str] = []
    for w in caught:
        if w.category.__name__ != "TracerWarning":
            continue
        first = str(w.message).split(". ")[0].strip().rstrip(".")
        where = f"{w.filename}:{w.lineno}" if common.is_user_file(w.filename) else None
        note = f"jit-trace: {first}" + (f" (at {common.relative(w.filename)}:{w.lineno})" if where else "")
        if note not in notes:
            notes.append(note)
    return notes


class _Block:
    """One TorchScript block being converted: its IR graph and the values visible in it."""

    def __init__(self, graph: ir.Graph, *, parent: _Block | None, owner: str | None, paths: dict[str, str]):
        self.graph = graph
        self.parent = parent
        self.owner = owner  # the node (in parent.graph) that runs this block
        self.paths = paths  # module-typed values -> their attribute path
        self.values: dict[str, tuple[str, int]] = {}  # TorchScript value name -> (node id, port)
        self.next_port: dict[str, int] = {}  # node id -> next free input port (captured values)

    def add_input(self, node_id: str, value: Any, *, captured: bool = False) -> None:
        """An ``input`` node of this block's graph for TorchScript value ``value``."""
        self.graph.add_node(
            node_id,
            name=value.debugName(),
            op="prim::Param",
            canonical_op="placeholder",
            kind="input",
            outputs=[_value_meta(value)],
            attrs={"captured": True} if captured else None,
        )
        self.graph.inputs.append(node_id)
        self.values[value.debugName()] = (node_id, 0)

    def module_path(self, value_name: str) -> str | None:
        """The attribute path of a module-typed value, looked up through enclosing blocks."""
        block: _Block | None = self
        while block is not None:
            if value_name in block.paths:
                return block.paths[value_name]
            block = block.parent
        return None


class _Converter:
    """Walks a TorchScript graph (and its blocks, recursively) into IR graphs."""

    def __init__(self, graph: ir.Graph, *, traced: bool, tensors: dict[str, Any]) -> None:
        self.root = graph
        self.traced = traced
        self.tensors = tensors  # module path -> parameter/buffer, for their shapes
        self.counts: Counter[str] = Counter()
        self.cwd = os.getcwd()  # source files are named relative to it
        # Constants and parameters by value name: the node each graph that uses them gets
        # (see the docstring), and its id (None: a new one in each graph).
        self.placed: dict[str, tuple[str | None, dict[str, Any]]] = {}
        self.printed: list[tuple[str, str, int]] | None = None  # see use_printed_sources()
        self.printed_at = 0

    def use_printed_sources(self, text: str) -> None:
        """Read source lines from the printed graph instead of asking each node.

        ``Node.sourceRange()`` formats the code around the range on every call (10 µs: 0.16 s
        for a scripted TransformerEncoder's 17k nodes); printing the whole graph takes 0.03 s
        and ends each node's line with the same location, ``# file:line:col``, in the order
        the converter visits the nodes. A traced graph's range is a whole Python stack, of
        which the printed line keeps only the innermost frame: traces keep asking each node.
        """
        self.printed = _printed_nodes(text)

    def _new_id(self, kind: str) -> str:
        leaf = kind.split("::")[-1].lower().strip("_") or "node"
        n = self.counts[leaf]
        self.counts[leaf] += 1
        return leaf if n == 0 else f"{leaf}_{n}"

    def convert_graph(self, ts_graph: Any) -> None:
        g = self.root
        scope = _Block(g, parent=None, owner=None, paths={})
        for inp in ts_graph.inputs():
            name = inp.debugName()
            if _is_module_type(inp.type()):
                scope.paths[name] = ""
                continue
            node_id = self._new_id("input") if name in g else _safe_id(name, g)
            scope.add_input(node_id, inp)
        self._convert_block(ts_graph, scope)
        self._add_output(ts_graph.outputs(), scope, "output" if "output" not in g else self._new_id("output"))

    def _add_output(self, outputs: Any, scope: _Block, out_id: str) -> None:
        outs = list(outputs)
        if not outs and scope.parent is not None:
            return  # a block that returns nothing (half of all blocks, in a scripted transformer)
        scope.graph.add_node(out_id, op="output", kind="output", outputs=[_value_meta(v) for v in outs])
        for port, v in enumerate(outs):
            found = self._resolve(scope, v)
            if found:
                scope.graph.add_edge(found[0], out_id, src_port=found[1], dst_port=port)
        scope.graph.outputs.append(out_id)

    def _resolve(self, scope: _Block, value: Any) -> tuple[str, int] | None:
        """Where ``value`` comes from in ``scope``'s graph.

        A value defined outside the block becomes, on first use, a captured ``input`` node of
        the block's graph, and an extra input edge of the node that owns the block.
        """
        name = value.debugName()
        found = scope.values.get(name)
        if found is not None:
            return found
        placed = self.placed.get(name)
        if placed is not None:
            node_id, data = placed
            if node_id is None:
                node_id = self._new_id(data["op"])
            if node_id not in scope.graph:  # a parameter read twice is one node
                scope.graph.add_node(node_id, **data)
            found = scope.values[name] = (node_id, 0)
            return found
        if scope.parent is None or scope.owner is None:
            return None
        outer = self._resolve(scope.parent, value)
        if outer is None:
            return None
        scope.add_input(self._new_id("captured"), value, captured=True)
        port = scope.parent.next_port.get(scope.owner, 0)
        scope.parent.graph.add_edge(outer[0], scope.owner, src_port=outer[1], dst_port=port)
        scope.parent.next_port[scope.owner] = port + 1
        return scope.values[name]

    def _convert_block(self, block: Any, scope: _Block) -> None:
        # Indexed access (inputsAt/outputsAt) on purpose: iterating a node's inputs(),
        # outputs() or blocks() through pybind costs ~12 µs a call, ten times more, and a
        # scripted TransformerEncoder has 17k nodes in 5k blocks.
        g = scope.graph
        table = g.nx._node
        for node in block.nodes():
            kind = node.kind()
            source = self._node_source(node, kind)
            if kind == "prim::GetAttr":
                self._get_attr(node, scope)
                continue
            if kind == "prim::Constant" and node.outputsSize() == 1:
                out = node.outputsAt(0)
                name = out.debugName()
                self.placed[name] = (
                    None,
                    {
                        "name": name,
                        "op": kind,
                        "kind": "const",
                        "outputs": [_value_meta(out)],
                        "attrs": _attrs(node),
                        "source": source,
                    },
                )
                continue
            node_id = self._new_id(kind)
            outputs = [node.outputsAt(i) for i in range(node.outputsSize())]
            sources = [self._resolve(scope, node.inputsAt(i)) for i in range(node.inputsSize())]
            blocks = list(node.blocks()) if kind in BLOCK_KINDS else []
            labels = BLOCK_NAMES.get(kind, ())
            if len(labels) != len(blocks):
                labels = tuple(f"block{i}" for i in range(len(blocks)))
            sub_names = [f"{node_id}.{label}" for label in labels]
            data = g.add_node(
                node_id,
                name=outputs[0].debugName() if outputs else node_id,
                op=kind,
                kind=_kind_of(kind),
                scope=_scope(node.scopeName()),
                outputs=_list_meta(node, kind, outputs) or [_value_meta(v) for v in outputs],
                attrs=_attrs(node) if kind == "prim::Constant" else None,
                source=source,
                subgraphs=sub_names,
            )
            for port, src in enumerate(sources):
                if src is not None:
                    g.add_edge(src[0], node_id, src_port=src[1], dst_port=port)
            if not data["scope"]:
                # TorchScript keeps no module scopes in scripted graphs: an op reading a
                # module's weight belongs to that module.
                for src in sources:
                    if src is not None and table[src[0]]["kind"] == "param":
                        data["scope"] = list(table[src[0]]["scope"])
                        break
            scope.next_port[node_id] = len(sources)
            for sub_name, sub_block in zip(sub_names, blocks):
                sub = ir.Graph(
                    sub_name,
                    framework=self.root.framework,
                    capture=self.root.capture,
                    framework_version=self.root.framework_version,
                )
                inner = _Block(sub, parent=scope, owner=node_id, paths={})
                params, returns = sub_block.paramNode(), sub_block.returnNode()
                for i in range(params.outputsSize()):
                    inner.add_input(self._new_id("block_input"), params.outputsAt(i))
                g.subgraphs[sub_name] = sub
                self._convert_block(sub_block, inner)
                block_outputs = [returns.inputsAt(i) for i in range(returns.inputsSize())]
                self._add_output(block_outputs, inner, self._new_id("block_output"))
            for i, v in enumerate(outputs):
                scope.values[v.debugName()] = (node_id, i)

    def _get_attr(self, node: Any, scope: _Block) -> None:
        owner = node.inputsAt(0).debugName()
        attr = node.s("name")
        base = scope.module_path(owner)
        path = attr if not base else f"{base}.{attr}"
        out = node.output()
        if _is_module_type(out.type()):
            scope.paths[out.debugName()] = path
            return
        meta = common.tensor_outputs(self.tensors[path]) if path in self.tensors else [_value_meta(out)]
        self.placed[out.debugName()] = (
            path,
            {
                "name": path,
                "op": "prim::GetAttr",
                "kind": "param",
                "scope": path.split(".")[:-1],
                "outputs": meta,
                "canonical_op": "variable",
            },
        )

    def _node_source(self, node: Any, kind: str) -> dict[str, Any] | None:
        printed = self.printed
        if printed is not None:
            at = self.printed_at
            if at < len(printed) and printed[at][0] == kind:
                self.printed_at = at + 1
                found = _printed_source_of(printed[at][1], printed[at][2], self.cwd)
                return dict(found) if found else None
            self.printed = None  # out of step with the printed graph: ask each node from here on
        found = _source_of(node.sourceRange(), self.traced, self.cwd)
        return dict(found) if found else None


# One node's line of a printed TorchScript graph: `  %y : Tensor = aten::relu(%x) # f.py:3:8`
# (no outputs: `   = prim::RaiseException(...)`); the kind is checked against the node's own.
_PRINTED_NODE = re.compile(r"^ *(?:%.*? )?= ([\w:]+)")
_PRINTED_SOURCE = re.compile(r" # (.+):(\d+):\d+$")


def _printed_nodes(text: str) -> list[tuple[str, str, int]]:
    """(kind, file, line) of each node of a printed graph, in print order ("" and 0 when the
    line has no location)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.endswith("):")), len(lines))
    nodes = []
    for line in lines[start + 1 :]:
        head = _PRINTED_NODE.match(line)
        if head is None:
            continue  # `blockN(...):`, `-> (...)` and the final `return (...)`
        where = _PRINTED_SOURCE.search(line)
        nodes.append((head[1], where[1], int(where[2])) if where else (head[1], "", 0))
    return nodes


@functools.lru_cache(maxsize=4096)
def _printed_source_of(filename: str, line: int, cwd: str) -> tuple[tuple[str, Any], ...] | None:
    if not filename or not common.is_user_file(filename):
        return None
    return (("file", common.relative(filename)), ("line", line))


@functools.lru_cache(maxsize=4096)
def _source_of(source_range: str, traced: bool, cwd: str) -> tuple[tuple[str, Any], ...] | None:
    """The user's frame in a TorchScript source range (ops of one line share it: cached per
    working directory, since the file is named relative to it)."""
    found = _parse_source(source_range, traced)
    return tuple(found.items()) if found else None


def _parse_source(source_range: str, traced: bool) -> dict[str, Any] | None:
    if not source_range:
        return None
    if traced:
        for filename, line in _TRACE_FRAME.findall(source_range):
            if common.is_user_file(filename):
                return {"file": common.relative(filename), "line": int(line)}  # innermost first
        return None
    found = None
    for filename, line in _SCRIPT_FRAME.findall(source_range):
        if common.is_user_file(filename):
            found = {"file": common.relative(filename), "line": int(line)}
    return found


def _is_module_type(t: Any) -> bool:
    return t.kind() == "ClassType"


def _safe_id(name: str, g: ir.Graph) -> str:
    return name if name not in g else f"{name}_input"


def _kind_of(kind: str) -> str:
    if kind == "prim::Constant":
        return "const"
    if kind in ("prim::If", "prim::Loop", "prim::RaiseException"):
        return "control"
    return "op"


def _scope(scope_name: str) -> list[str]:
    """``__module.layers/__module.layers.0/__module.layers.0.fc`` -> ``["layers", "0", "fc"]``."""
    if not scope_name:
        return []
    leaf = scope_name.split("/")[-1]
    leaf = leaf.removeprefix("__module.").removeprefix("__module")
    return [p for p in leaf.split(".") if p]


def _value_meta(v: Any) -> dict[str, Any]:
    t = v.type()
    kind = t.kind()
    if kind == "TensorType":
        sizes = t.sizes() if t.sizes() is not None else None
        scalar = t.scalarType()
        return {
            "shape": list(sizes) if sizes is not None else None,
            "dtype": _SCALAR_TYPES.get(scalar, scalar),
        }
    text = str(t)
    if text in _PY_TYPES:
        return {"shape": [], "dtype": _PY_TYPES[text]}
    return {"shape": None, "dtype": text}


def _list_meta(node: Any, kind: str, outputs: list[Any]) -> list[dict[str, Any]] | None:
    """A ``prim::ListConstruct`` of k items is a list of length k."""
    if kind != "prim::ListConstruct" or len(outputs) != 1:
        return None
    text = str(outputs[0].type())
    elem = text[len("List[") : -1] if text.startswith("List[") else text
    return [{"shape": [node.inputsSize()], "dtype": _PY_TYPES.get(elem, elem.lower())}]


def _attrs(node: Any) -> dict[str, Any]:
    """A ``prim::Constant``'s value."""
    try:
        value = node.output().toIValue()
    except Exception:
        return {}
    import torch

    if isinstance(value, torch.Tensor):
        if value.numel() <= 8:
            return {"value": value.tolist(), "dtype": common.dtype_name(value.dtype)}
        return {"value": {"shape": list(value.shape), "dtype": common.dtype_name(value.dtype)}}
    return {"value": common.literal(value)}
