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
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, NamedTuple

from graphscope import _gc, ir
from graphscope.errors import GraphscopeError, first_line
from graphscope.tracers import _meta
from graphscope.tracers import _torch_common as common
from graphscope.tracers._source import source_of_frames

_TRACE_FRAME = re.compile(r"^(.+?)\((\d+)\): ", re.M)
_SCRIPT_FRAME = re.compile(r'File "([^"]+)", line (\d+)')
_SERIALIZED = re.compile(r"(?:^|\n)Serialized\s")

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

# Nodes the converter places in each graph that uses them, with a scope of their own making.
_PLACED = frozenset({"prim::Constant", "prim::GetAttr"})
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
        _meta.refuse_meta(model, example_inputs, "torch.jit.script")
        with common.model_left_untouched(model):
            try:
                scripted = torch.jit.script(model)
            except Exception as exc:
                raise common.capture_error("torch.jit.script", exc) from None
    else:
        common.check_module(model, example_inputs, "jit-trace")
        _meta.refuse_meta(model, example_inputs, "torch.jit.trace")
        with (
            common.model_left_untouched(model),
            common.quiet_torch_logs(),
            warnings.catch_warnings(record=True) as caught,
        ):
            warnings.simplefilter("always")
            try:
                scripted = torch.jit.trace(model, tuple(example_inputs or ()), check_trace=False)
            except Exception as exc:
                raise common.capture_error("torch.jit.trace", exc) from None
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
    tensors, modules = {}, _ModuleScopes(())
    if isinstance(scripted, torch.nn.Module):
        tensors = {**dict(scripted.named_buffers()), **dict(scripted.named_parameters())}
        modules = _ModuleScopes(
            (name, getattr(module, "original_name", type(module).__name__))
            for name, module in scripted.named_modules()
        )
    with _gc.paused():
        try:
            read, module_inputs = _read(ts_graph, traced=method == "jit-trace", scopes=modules)
            _Converter(graph, tensors=tensors).convert(read, module_inputs)
        except (RuntimeError, UnicodeDecodeError, MemoryError) as exc:
            # A damaged archive can load, then fail in torch's C++ when the graph's debug
            # information (source ranges, unpickled lazily) is read: std::bad_alloc for a
            # length gone wrong.
            raise GraphscopeError(
                f"the TorchScript graph cannot be read (a damaged archive?): {first_line(exc, limit=None)}"
            ) from None
    if example_inputs and method == "jit-script":
        # A scripted graph types its inputs as plain Tensor; the example inputs say more.
        known = common.signature_of(example_inputs)
        for node_id, meta in zip(graph.inputs, known):
            node = graph.node(node_id)
            if node["outputs"] and node["outputs"][0]["shape"] is None:
                node["outputs"] = [meta]
    return graph


def _read(ts_graph: Any, *, traced: bool, scopes: _ModuleScopes) -> tuple[_BlockOf, list[str]]:
    """The graph's nodes, from its printed form when it is a plain scripted graph (fast, see
    _torchscript_text), else through pybind. A traced graph's source ranges are whole Python
    stacks, of which the printed line keeps only the innermost frame: traces are read through
    pybind."""
    if not traced:
        from graphscope.tracers import _torchscript_text as text

        try:
            return text.PrintedReader(ts_graph, scopes).graph()
        except text.NotPlain:
            pass
    return _Reader(traced=traced, scopes=scopes).graph(ts_graph)


class _ModuleScopes:
    """A scripted node's module, from the call stack inlining left on it.

    ``Node.getModuleHierarchy()`` names the module instances the inlined call went through:
    ``0(TransformerEncoderLayer).SELF(TransformerEncoderLayer).self_attn(MultiheadAttention)
    .UNKNOWN_INSTANCE(UNKNOWN_TYPE)`` (``SELF``: a method of the same module, ``UNKNOWN``: a
    function). A module inside a ModuleList or Sequential is named by its index only (``0``),
    so each name is looked for below the module found so far, through such containers, and
    must be of the class named; where that still leaves two, the scope stops there.
    """

    def __init__(self, modules: Iterable[tuple[str, str]]) -> None:
        self.types = dict(modules)  # module path -> its class name
        self.known: dict[str, list[str]] = {}

    def __call__(self, hierarchy: str) -> list[str]:
        found = self.known.get(hierarchy)
        if found is None:
            found = self.known[hierarchy] = self._resolve(hierarchy)
        return list(found)

    def _resolve(self, hierarchy: str) -> list[str]:
        path = ""
        for name, type_name in _INSTANCE.findall(hierarchy):
            if name in ("SELF", "UNKNOWN_INSTANCE"):
                continue
            direct = f"{path}.{name}" if path else name
            if direct in self.types:
                path = direct
                continue
            prefix = f"{path}." if path else ""
            below = [
                p
                for p, t in self.types.items()
                if p.startswith(prefix) and p.endswith(f".{name}") and t == type_name
            ]
            depth = min((p.count(".") for p in below), default=0)
            nearest = [p for p in below if p.count(".") == depth]  # layers.0, not layers.0.mlp.0
            if len(nearest) != 1:
                break
            path = nearest[0]
        return path.split(".") if path else []


_INSTANCE = re.compile(r"([^.()]+)\(([^()]*)\)")


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


class _Value(NamedTuple):
    """A TorchScript value as the converter needs it."""

    name: str  # its debug name, unique in the whole graph
    meta: dict[str, Any]  # {shape, dtype}


class _Node(NamedTuple):
    """One TorchScript node, read (from pybind or the printed graph) before it is converted."""

    kind: str
    outputs: list[_Value]
    inputs: list[str]  # value names
    blocks: list[_BlockOf]
    source: dict[str, Any] | None  # shared between the nodes of one line: not to be edited
    scope: list[str]
    # prim::Constant: its attrs ({"value": ...}); prim::GetAttr: (attribute, output is a module)
    extra: Any = None


class _BlockOf(NamedTuple):
    """One block of a prim::If / prim::Loop node: what it takes, runs and returns."""

    params: list[_Value]
    nodes: list[_Node]
    returns: list[str]


class _Scope:
    """One graph being built: its IR graph and the values visible in it."""

    def __init__(self, graph: ir.Graph, *, parent: _Scope | None, owner: str | None):
        self.graph = graph
        self.parent = parent
        self.owner = owner  # the node (in parent.graph) that runs this block
        self.paths: dict[str, str] = {}  # module-typed values -> their attribute path
        self.values: dict[str, tuple[str, int]] = {}  # value name -> (node id, port)
        self.next_port: dict[str, int] = {}  # node id -> next free input port (captured values)

    def add_input(self, node_id: str, value: _Value, *, captured: bool = False) -> None:
        """An ``input`` node of this graph for ``value``."""
        self.graph.add_node(
            node_id,
            name=value.name,
            op="prim::Param",
            canonical_op="placeholder",
            kind="input",
            outputs=[value.meta],
            attrs={"captured": True} if captured else None,
        )
        self.graph.inputs.append(node_id)
        self.values[value.name] = (node_id, 0)

    def module_path(self, value_name: str) -> str | None:
        """The attribute path of a module-typed value, looked up through enclosing blocks."""
        scope: _Scope | None = self
        while scope is not None:
            if value_name in scope.paths:
                return scope.paths[value_name]
            scope = scope.parent
        return None


class _Converter:
    """Turns the nodes read from a TorchScript graph (and its blocks, recursively) into IR."""

    def __init__(self, graph: ir.Graph, *, tensors: dict[str, Any]) -> None:
        self.root = graph
        self.tensors = tensors  # module path -> parameter/buffer, for their shapes
        self.counts: dict[str, int] = defaultdict(int)
        # Constants and parameters by value name: the node each graph that uses them gets
        # (see the docstring), and its id (None: a new one in each graph).
        self.placed: dict[str, tuple[str | None, dict[str, Any]]] = {}
        self.metas: dict[str, dict[str, Any]] = {}  # every value's {shape, dtype}, for captures
        self.tuples: dict[str, list[str]] = {}  # a prim::TupleConstruct's value -> its items

    def _new_id(self, kind: str) -> str:
        leaf = _leaf(kind)
        n = self.counts[leaf]
        self.counts[leaf] = n + 1
        return leaf if n == 0 else f"{leaf}_{n}"

    def convert(self, graph: _BlockOf, modules: list[str]) -> None:
        """``graph``: the whole graph as a block (its params are the graph's inputs);
        ``modules``: the inputs that are modules (``self``), not values."""
        g = self.root
        scope = _Scope(g, parent=None, owner=None)
        for name in modules:
            scope.paths[name] = ""
        for value in graph.params:
            node_id = self._new_id("input") if value.name in g else _safe_id(value.name, g)
            scope.add_input(node_id, value)
            self.metas[value.name] = value.meta
        self._convert_nodes(graph.nodes, scope)
        self._add_output(graph.returns, scope, "output" if "output" not in g else self._new_id("output"))

    def _add_output(self, returns: list[str], scope: _Scope, out_id: str) -> None:
        if not returns and scope.parent is not None:
            return  # a block that returns nothing (half of all blocks, in a scripted transformer)
        g = scope.graph
        # The model's outputs: a returned tuple (a traced model returning (y, y.sum())) is its
        # items, whose shapes are known, not one value of type Tuple[Tensor, Tensor].
        names = self._items(returns) if scope.parent is None else returns
        unknown = {"shape": None, "dtype": None}
        g.add_node(out_id, op="output", kind="output", outputs=[self.metas.get(n, unknown) for n in names])
        for port, name in enumerate(returns):
            found = self._resolve(scope, name)
            if found:
                g.add_edge(found[0], out_id, src_port=found[1], dst_port=port)
        g.outputs.append(out_id)

    def _items(self, names: list[str]) -> list[str]:
        """Values built by prim::TupleConstruct replaced by their items, nested tuples too."""
        out: list[str] = []
        for name in names:
            items = self.tuples.get(name)
            out.extend(self._items(items) if items is not None else [name])
        return out

    def _resolve(self, scope: _Scope, name: str) -> tuple[str, int] | None:
        """Where value ``name`` comes from in ``scope``'s graph.

        A value defined outside the block becomes, on first use, a captured ``input`` node of
        the block's graph, and an extra input edge of the node that owns the block.
        """
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
        outer = self._resolve(scope.parent, name)
        if outer is None:
            return None
        meta = self.metas.get(name, {"shape": None, "dtype": None})
        scope.add_input(self._new_id("captured"), _Value(name, meta), captured=True)
        port = scope.parent.next_port.get(scope.owner, 0)
        scope.parent.graph.add_edge(outer[0], scope.owner, src_port=outer[1], dst_port=port)
        scope.parent.next_port[scope.owner] = port + 1
        return scope.values[name]

    def _convert_nodes(self, nodes: list[_Node], scope: _Scope) -> None:
        g = scope.graph
        table = g.nx._node
        values, metas, resolve = scope.values, self.metas, self._resolve
        for node in nodes:
            kind = node.kind
            if kind == "prim::GetAttr":
                self._get_attr(node, scope)
                continue
            if kind == "prim::Constant" and len(node.outputs) == 1:
                out = node.outputs[0]
                self.placed[out.name] = (
                    None,
                    {
                        "name": out.name,
                        "op": kind,
                        "kind": "const",
                        "outputs": [out.meta],
                        "attrs": node.extra,
                        "source": node.source,
                    },
                )
                metas[out.name] = out.meta
                continue
            node_id = self._new_id(kind)
            sources = [values.get(name) or resolve(scope, name) for name in node.inputs]
            sub_names = []
            if node.blocks:
                labels = BLOCK_NAMES.get(kind, ())
                if len(labels) != len(node.blocks):
                    labels = tuple(f"block{i}" for i in range(len(node.blocks)))
                sub_names = [f"{node_id}.{label}" for label in labels]
            outputs = node.outputs
            if kind == "prim::TupleConstruct" and len(outputs) == 1:
                self.tuples[outputs[0].name] = list(node.inputs)
            data = g.add_node(
                node_id,
                name=outputs[0].name if outputs else node_id,
                op=kind,
                kind=_kind_of(kind),
                scope=node.scope,
                outputs=[v.meta for v in outputs],
                source=node.source,
                subgraphs=sub_names,
            )
            for port, src in enumerate(sources):
                if src is not None:
                    g.add_edge(src[0], node_id, src_port=src[1], dst_port=port)
            if not data["scope"]:
                # No module of its own (a traced node outside every module, a scripted one the
                # call stack does not place): an op reading a module's weight belongs to it.
                for src in sources:
                    if src is not None and table[src[0]]["kind"] == "param":
                        data["scope"] = list(table[src[0]]["scope"])
                        break
            scope.next_port[node_id] = len(sources)
            for sub_name, block in zip(sub_names, node.blocks):
                sub = ir.Graph(
                    sub_name,
                    framework=self.root.framework,
                    capture=self.root.capture,
                    framework_version=self.root.framework_version,
                )
                inner = _Scope(sub, parent=scope, owner=node_id)
                for value in block.params:
                    inner.add_input(self._new_id("block_input"), value)
                    metas[value.name] = value.meta
                g.subgraphs[sub_name] = sub
                self._convert_nodes(block.nodes, inner)
                self._add_output(block.returns, inner, self._new_id("block_output"))
            for i, value in enumerate(outputs):
                values[value.name] = (node_id, i)
                metas[value.name] = value.meta

    def _get_attr(self, node: _Node, scope: _Scope) -> None:
        attr, is_module = node.extra
        base = scope.module_path(node.inputs[0])
        path = attr if not base else f"{base}.{attr}"
        out = node.outputs[0]
        if is_module:
            scope.paths[out.name] = path
            return
        meta = common.tensor_outputs(self.tensors[path]) if path in self.tensors else [out.meta]
        self.placed[out.name] = (
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
        self.metas[out.name] = meta[0] if len(meta) == 1 else out.meta


# -- reading a TorchScript graph through pybind ----------------------------------------------


class _Reader:
    """Reads every node through torch's pybind API: any graph, traced or scripted.

    Indexed access (inputsAt/outputsAt) on purpose: iterating a node's inputs(), outputs() or
    blocks() through pybind costs ~12 µs a call, ten times more.
    """

    def __init__(self, *, traced: bool, scopes: _ModuleScopes) -> None:
        self.traced = traced
        self.scopes = scopes
        self.cwd = os.getcwd()  # source files are named relative to it

    def graph(self, ts_graph: Any) -> tuple[_BlockOf, list[str]]:
        params, modules = _graph_inputs(ts_graph)
        outputs = [v.debugName() for v in ts_graph.outputs()]
        return _BlockOf(params, self.nodes(ts_graph), outputs), modules

    def nodes(self, block: Any) -> list[_Node]:
        nodes = []
        for node in block.nodes():
            kind = node.kind()
            outs = [node.outputsAt(i) for i in range(node.outputsSize())]
            n_inputs = node.inputsSize()
            outputs = [_value(v) for v in outs]
            if kind == "prim::ListConstruct" and len(outs) == 1:
                outputs = [_Value(outputs[0].name, _list_meta(str(outs[0].type()), n_inputs))]
            extra: Any = None
            if kind == "prim::Constant":
                extra = _attrs(node)
            elif kind == "prim::GetAttr":
                extra = (node.s("name"), _is_module_type(outs[0].type()))
            nodes.append(
                _Node(
                    kind,
                    outputs,
                    [node.inputsAt(i).debugName() for i in range(n_inputs)],
                    [self.block(b) for b in node.blocks()] if kind in BLOCK_KINDS else [],
                    _source_of(node.sourceRange(), self.traced, self.cwd),
                    _scope(node.scopeName())
                    or (self.scopes(node.getModuleHierarchy()) if kind not in _PLACED else []),
                    extra,
                )
            )
        return nodes

    def block(self, block: Any) -> _BlockOf:
        params, returns = block.paramNode(), block.returnNode()
        return _BlockOf(
            [_value(params.outputsAt(i)) for i in range(params.outputsSize())],
            self.nodes(block),
            [returns.inputsAt(i).debugName() for i in range(returns.inputsSize())],
        )


def _graph_inputs(ts_graph: Any) -> tuple[list[_Value], list[str]]:
    """The graph's inputs, and the names of those that are modules (``self``)."""
    params, modules = [], []
    for v in ts_graph.inputs():
        if _is_module_type(v.type()):
            modules.append(v.debugName())
        else:
            params.append(_value(v))
    return params, modules


def _value(v: Any) -> _Value:
    return _Value(v.debugName(), _value_meta(v))


@functools.lru_cache(maxsize=4096)
def _source_of(source_range: str, traced: bool, cwd: str) -> dict[str, Any] | None:
    """The user's frame in a TorchScript source range (ops of one line share it)."""
    if traced:  # innermost first; a model library's frame when the user's is not there
        return source_of_frames((f, int(n)) for f, n in _TRACE_FRAME.findall(source_range) if f)
    # A loaded archive's range names the original file first, then the archive's own
    # generated code ("Serialized   File code/__torch__/..."): the original is the user's.
    original = _SERIALIZED.split(source_range, maxsplit=1)[0]
    frames = [_user_frame(f, int(n), cwd) for f, n in _SCRIPT_FRAME.findall(original)]
    return next((frame for frame in reversed(frames) if frame), None)


@functools.lru_cache(maxsize=4096)
def _user_frame(filename: str, line: int, cwd: str) -> dict[str, Any] | None:
    """``{file, line}`` when the file is the user's, else None. One dict per line, shared:
    Graph.add_node copies what it is given. Cached per working directory, since the file is
    named relative to it."""
    if not filename or not common.is_user_file(filename):  # `# :0:0`: no location
        return None
    return {"file": common.relative(filename), "line": line}


@functools.lru_cache(maxsize=1024)
def _leaf(kind: str) -> str:
    """``aten::__not__`` -> ``not``: node ids are the op's short name, numbered."""
    return kind.split("::")[-1].lower().strip("_") or "node"


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


def _list_meta(type_text: str, n_items: int) -> dict[str, Any]:
    """A ``prim::ListConstruct`` of k items is a list of length k."""
    elem = type_text[len("List[") : -1] if type_text.startswith("List[") else type_text
    return {"shape": [n_items], "dtype": _PY_TYPES.get(elem, elem.lower())}


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
