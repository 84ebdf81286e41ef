"""IR -> an ONNX ``ModelProto``, so that Netron (or any ONNX tool) opens a captured graph.

What becomes what:

- **ops**: a node is written as a standard ONNX op (``Gemm``, ``Conv``, ``Relu``, ``MatMul``, ``Add``,
  ``Softmax``, ...) only when the mapping is exact for what the capture recorded, and ONNX itself
  agrees: :func:`onnx.checker.check_node` accepts the node and, where the input shapes are known,
  ONNX's shape inference gives the output shapes and dtypes the capture recorded. A graph that
  came from ONNX keeps its own ops and opset. Every other node becomes an op of the custom domain
  ``graphscope`` whose op type is the original op (``aten::linear``, ``call_module:Linear``,
  ``prim::If``), its attributes carried over, so Netron still shows the whole graph.
- **weights**: the IR keeps no weights, only their shapes, so each ``param`` is a *graph input*
  with its shape and dtype (documented as a weight, and listed in the model's metadata under
  ``graphscope.params``). Initializers would need data; a value that only had a value_info,
  with no producer, is a dangling name that ONNX's checker rejects.
- **constants**: a ``const`` whose value the IR holds (scalars, small lists) is a ``Constant``;
  one summarised by the capture (large, or not a tensor) is a ``graphscope`` op.
- **shapes and dtypes**: graph inputs and outputs carry them; every other value with a known
  dtype gets a ``value_info``. ONNX requires a shape on the main graph's inputs and outputs, so
  an output of unknown rank stays an ordinary value (named in ``graphscope.unbound_outputs``)
  and an input of unknown rank becomes a ``graphscope`` op with no inputs.
- **outputs**: an IR ``output`` node is an ``Identity`` whose result is the graph output.
- **control flow**: a node that runs bodies (``prim::If``, ``While``, a TF function call) gets
  each body as a graph attribute, the way ONNX's own ``If``/``Loop`` hold theirs; Netron opens
  them. A body two nodes run is embedded in both.
- **what ONNX cannot say**: control dependencies (ordering only) and the back edges of a TF1
  while loop (ONNX graphs are acyclic) are left out, and counted in the model's metadata.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphscope.errors import GraphscopeError

if TYPE_CHECKING:
    from graphscope.ir import Graph

__all__ = ["CUSTOM_DOMAIN", "OPSET", "OnnxExport", "to_onnx"]

OPSET = 20  # has LayerNormalization (17) and Gelu (20); onnxruntime reads it since 1.17, Netron always
CUSTOM_DOMAIN = "graphscope"

# numpy dtype names (the IR's) -> ONNX TensorProto element types
_ELEM_TYPES = {
    "float32": 1,
    "uint8": 2,
    "int8": 3,
    "uint16": 4,
    "int16": 5,
    "int32": 6,
    "int64": 7,
    "str": 8,
    "string": 8,
    "bool": 9,
    "float16": 10,
    "float64": 11,
    "uint32": 12,
    "uint64": 13,
    "complex64": 14,
    "complex128": 15,
    "bfloat16": 16,
}

# Framework ops (their bare, lowercased names) that mean exactly one ONNX op. Matching the leaf
# rather than the canonical op matters: canonical `relu` also covers relu6 and hardtanh.
_UNARY = {
    **dict.fromkeys(("relu", "relu_"), "Relu"),
    **dict.fromkeys(("sigmoid", "sigmoid_", "logistic"), "Sigmoid"),
    **dict.fromkeys(("tanh", "tanh_"), "Tanh"),
    **dict.fromkeys(("exp", "exp_"), "Exp"),
    **dict.fromkeys(("log", "log_"), "Log"),
    **dict.fromkeys(("abs", "abs_"), "Abs"),
    **dict.fromkeys(("neg", "__neg__"), "Neg"),
    **dict.fromkeys(("sqrt", "sqrt_"), "Sqrt"),
    **dict.fromkeys(("erf",), "Erf"),
    **dict.fromkeys(("floor",), "Floor"),
    **dict.fromkeys(("ceil",), "Ceil"),
    **dict.fromkeys(("reciprocal",), "Reciprocal"),
    **dict.fromkeys(("identity", "clone", "detach", "alias", "contiguous", "stopgradient"), "Identity"),
}
_BINARY = {
    **dict.fromkeys(("add", "add_", "addv2", "biasadd", "__add__", "__iadd__", "iadd"), "Add"),
    **dict.fromkeys(("sub", "sub_", "__sub__"), "Sub"),
    **dict.fromkeys(("mul", "mul_", "__mul__", "__rmul__", "multiply"), "Mul"),
    **dict.fromkeys(("div", "div_", "realdiv", "truediv", "__truediv__"), "Div"),
    **dict.fromkeys(("pow", "__pow__"), "Pow"),
    **dict.fromkeys(
        ("matmul", "mm", "bmm", "batchmatmul", "batchmatmulv2", "batchmatmulv3", "__matmul__"), "MatMul"
    ),
    **dict.fromkeys(("greater", "gt", "__gt__"), "Greater"),
    **dict.fromkeys(("less", "lt", "__lt__"), "Less"),
    **dict.fromkeys(("greaterequal", "ge", "__ge__"), "GreaterOrEqual"),
    **dict.fromkeys(("lessequal", "le", "__le__"), "LessOrEqual"),
    **dict.fromkeys(("equal", "eq", "__eq__"), "Equal"),
}
_SOFTMAX = {
    "softmax": "Softmax",
    "_softmax": "Softmax",
    "log_softmax": "LogSoftmax",
    "_log_softmax": "LogSoftmax",
}
# Attributes that change nothing ONNX would compute: TensorFlow's dtype and gradient hints, and
# the while-loop frame graphscope's TF1 capture notes on each node.
_NEUTRAL = {"T", "grad_a", "grad_b", "grad_x", "grad_y", "frame"}
# TensorFlow flags that must be off for the plain ONNX op to mean the same.
_TF_FALSE = ("transpose_a", "transpose_b", "adj_x", "adj_y")


@dataclass
class OnnxExport:
    """The model and what the export had to decide."""

    model: Any  # onnx.ModelProto
    standard: Counter[str] = field(default_factory=Counter)  # ONNX op -> nodes written as it
    custom: Counter[str] = field(default_factory=Counter)  # original op -> nodes kept as graphscope ops
    params: list[str] = field(default_factory=list)  # graph inputs that stand for weights
    dropped_control: int = 0
    dropped_back: int = 0
    unbound_outputs: list[str] = field(default_factory=list)
    recursive: list[str] = field(default_factory=list)  # bodies that call themselves (not embedded)

    def notes(self) -> list[str]:
        """One line each on what a reader of the ONNX file should know."""
        standard = sum(self.standard.values())
        total = standard + sum(self.custom.values())
        notes = [
            f"{standard} of {_count(total, 'node')} {'is a' if standard == 1 else 'are'} standard ONNX op{'' if standard == 1 else 's'}"
        ]
        if self.custom:
            top = ", ".join(f"{op} ×{n}" for op, n in self.custom.most_common(6))
            more = len(self.custom) - 6
            notes.append(
                f"kept as '{CUSTOM_DOMAIN}' ops (no exact ONNX op): {top}"
                + (f", +{more} more" if more > 0 else "")
            )
        if self.params:
            notes.append(
                f"{_count(len(self.params), 'weight')} {'is a graph input' if len(self.params) == 1 else 'are graph inputs'} "
                "(graphscope graphs hold no weight values)"
            )
        dropped = [
            _count(n, what, plural)
            for n, what, plural in (
                (self.dropped_control, "control dependency", "control dependencies"),
                (self.dropped_back, "loop back edge", "loop back edges"),
            )
            if n
        ]
        if dropped:
            notes.append(f"left out (ONNX cannot express them): {', '.join(dropped)}")
        if self.unbound_outputs:
            n = len(self.unbound_outputs)
            notes.append(
                f"{_count(n, 'output')} of unknown rank {'is not a graph output' if n == 1 else 'are not graph outputs'} "
                "(ONNX requires a shape there)"
            )
        if self.recursive:
            notes.append(f"recursive bodies not embedded: {', '.join(self.recursive)}")
        return notes


def _count(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def require_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise GraphscopeError(
            "exporting ONNX needs the onnx package: pip install 'graphscope[onnx]'"
        ) from None
    return onnx


# What an ONNX file can hold of a graph: protobuf refuses messages nested more than 100 deep,
# and each body adds three levels (node, attribute, graph); a node's outputs are listed one
# by one, so a port numbered 10**9 would need a billion names (22 GB before the kernel ended it).
MAX_BODY_DEPTH = 30
MAX_PORT = 65535


def _refuse_what_onnx_cannot_hold(graph: Graph) -> None:
    deepest, stack = 0, [(graph, 0)]
    while stack:
        g, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((sub, depth + 1) for sub in g.subgraphs.values())
        for u, v, d in g.edge_data():
            port = max(d["src_port"], d["dst_port"])
            if port > MAX_PORT:
                raise GraphscopeError(
                    f"the edge {u!r} -> {v!r} uses port {port}: an ONNX export lists every output "
                    f"up to a node's highest port, and graphscope exports ports up to {MAX_PORT}"
                )
    if deepest > MAX_BODY_DEPTH:
        raise GraphscopeError(
            f"the graph's control-flow bodies nest {deepest} deep: an ONNX file (a protobuf) holds "
            f"at most {MAX_BODY_DEPTH}"
        )


def to_onnx(graph: Graph) -> OnnxExport:
    """Build the ONNX model for ``graph`` (see the module docstring for the mapping)."""
    onnx = require_onnx()
    _refuse_what_onnx_cannot_hold(graph)
    builder = _Builder(onnx, graph)
    proto = builder.graph(graph, chain=[graph], paths=[""], main=True)
    opsets = dict(builder.opsets)
    if builder.report.custom:
        opsets[CUSTOM_DOMAIN] = 1
    opset_ids = [onnx.helper.make_opsetid(domain, version) for domain, version in sorted(opsets.items())]
    model = onnx.helper.make_model(proto, opset_imports=opset_ids, producer_name="graphscope")
    from graphscope import __version__

    model.producer_version = __version__
    # The oldest IR version that can carry these opsets: the file opens in older tools too.
    model.ir_version = onnx.helper.find_min_ir_version_for(opset_ids, ignore_unknown=True)
    meta = {
        "graphscope.framework": graph.framework or "",
        "graphscope.capture": graph.capture or "",
        "graphscope.framework_version": graph.framework_version or "",
        "graphscope.params": json.dumps(builder.report.params),
        "graphscope.dropped_control_edges": str(builder.report.dropped_control),
        "graphscope.dropped_back_edges": str(builder.report.dropped_back),
        "graphscope.unbound_outputs": json.dumps(builder.report.unbound_outputs),
    }
    onnx.helper.set_model_props(model, meta)
    try:  # a model ONNX's own checker rejects is graphscope's bug: never write it
        onnx.checker.check_model(model)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise GraphscopeError(
            f"the ONNX model built for {graph.name!r} fails ONNX's checker ({first[:200]}); "
            "this is a graphscope bug, please report it"
        ) from None
    builder.report.model = model
    return builder.report


def _dim(d: Any) -> int | str | None:
    if isinstance(d, str) or (isinstance(d, int) and -(2**63) <= d < 2**63):
        return d
    return str(d) if isinstance(d, int) else None


def _opsets_of(graph: Graph) -> dict[str, int]:
    """An ONNX capture records its opsets in framework_version (``...; opset ai.onnx:17,...``)."""
    found = re.search(r"opset ([\w.:,-]+)", graph.framework_version or "")
    opsets: dict[str, int] = {}
    if graph.framework == "onnx" and found:
        for item in found.group(1).split(","):
            domain, _, version = item.rpartition(":")
            if version.isdigit():
                opsets["" if domain in ("", "ai.onnx") else domain] = int(version)
    opsets.setdefault("", OPSET)
    return opsets


def _leaf(op: str) -> str:
    """The bare op name: ``aten.add.Tensor`` -> ``add``, ``call_module:ReLU`` -> ``relu``."""
    leaf = op.split(":", 1)[1] if op.startswith(("call_module:", "call_function:", "call_method:")) else op
    leaf = leaf.split("::")[-1]
    if leaf.startswith("aten.") and leaf.count(".") >= 1:
        leaf = leaf.split(".")[1]
    return leaf.removeprefix("operator.").lower()


class _Builder:
    def __init__(self, onnx: Any, root: Graph) -> None:
        self.onnx = onnx
        self.helper = onnx.helper
        self.from_onnx = root.framework == "onnx"
        self.opsets = _opsets_of(root)
        self.ctx = onnx.checker.C.CheckerContext()
        self.ctx.ir_version = onnx.IR_VERSION
        self.ctx.opset_imports = {**self.opsets, CUSTOM_DOMAIN: 1}
        self.report = OnnxExport(model=None)

    # -- graphs ------------------------------------------------------------------------------

    def graph(self, g: Graph, *, chain: list[Graph], paths: list[str], main: bool) -> Any:
        helper = self.helper
        prefix = f"{paths[-1]}/" if paths[-1] else ""
        used: set[str] = set()
        values: dict[tuple[str, int], str] = {}
        types: dict[str, Any] = {}  # value name -> TypeProto, where the IR knows the dtype or shape

        back = {(u, v, k) for u, v, k in g.back_edges()}
        ports_used: Counter[str] = Counter()
        for u, _, d in g.nx.edges(data=True):
            ports_used[u] = max(ports_used[u], d["src_port"] + 1)

        def value_of(node_id: str, port: int) -> str:
            """A node's output ``port`` as an ONNX value name (``id``, or ``id:port`` for a
            node of several outputs), prefixed inside a body so no name shadows an outer one."""
            key = (node_id, port)
            if key not in values:
                count = max(len(g.node(node_id)["outputs"]), ports_used[node_id], 1)
                name = prefix + node_id if count == 1 else f"{prefix}{node_id}:{port}"
                while name in used:
                    name += "_"
                used.add(name)
                values[key] = name
            return values[key]

        inputs: list[tuple[tuple[int, bool], Any]] = []
        outputs: list[Any] = []
        nodes: list[Any] = []
        for node_id in g.order():
            n = g.node(node_id)
            count = max(len(n["outputs"]), ports_used[node_id], 1)
            out_names = [value_of(node_id, p) for p in range(count)]
            for p, meta in enumerate(n["outputs"]):
                t = self.type_proto(meta)
                if t is not None:
                    types[out_names[p]] = t
            if n["kind"] in ("input", "param") and (
                not main or all(self._has_shape(n, p) for p in range(count))
            ):
                # The declared inputs first, in their order; then other inputs; weights last.
                listed = g.inputs.index(node_id) if node_id in g.inputs else len(g.inputs)
                for p, name in enumerate(out_names):  # one graph input per output (almost always one)
                    vi = helper.make_value_info(name, self._io_type(_meta(n, p), main))
                    if n["kind"] == "param":
                        vi.doc_string = (
                            f"weight {n['name']}: graphscope keeps no weight values, so it is an input"
                        )
                        self.report.params.append(name)
                    inputs.append(((listed, n["kind"] == "param"), vi))
                continue
            data_in, ins = self._inputs(g, node_id, back, value_of)
            # An output node is an Identity per data input, unless something reads a port
            # beyond those (then it is kept whole, as a graphscope op).
            if n["kind"] == "output" and data_in and ports_used[node_id] <= len(data_in):
                for i, src_value in enumerate(data_in):
                    name = value_of(node_id, i)
                    nodes.append(helper.make_node("Identity", [src_value], [name], name=self._node_name(n)))
                    self.report.standard["Identity"] += 1
                    meta = _meta(n, i) if i < len(n["outputs"]) else None
                    if meta is None or (meta.get("dtype") is None and meta.get("shape") is None):
                        meta = self._source_meta(g, node_id, i)
                    if self.type_proto(meta) is not None:
                        types[name] = self.type_proto(meta)
                    self._graph_output(name, meta, main, outputs)
                continue
            node = self._standard(n, ins, data_in, out_names, types)
            if node is None:
                node = self._custom(n, ins, out_names, chain, paths)
            nodes.append(node)
            if node_id in g.outputs and n["kind"] != "output":
                for p, name in enumerate(out_names):
                    self._graph_output(name, _meta(n, p), main, outputs)
        graph_inputs = [vi for _, vi in sorted(inputs, key=lambda item: item[0])]  # stable: ties keep order
        bound = {vi.name for vi in [*graph_inputs, *outputs]}
        value_infos = [helper.make_value_info(name, t) for name, t in types.items() if name not in bound]
        # ONNX requires a name: an IR graph may have an empty one.
        proto = helper.make_graph(
            nodes, paths[-1] or g.name or "graph", graph_inputs, outputs, value_info=value_infos
        )
        if g.notes:
            proto.doc_string = "\n".join(g.notes)
        return proto

    def _graph_output(
        self, name: str, meta: Mapping[str, Any] | None, main: bool, outputs: list[Any]
    ) -> None:
        t = self._io_type(meta, main)
        if t is not None:
            outputs.append(self.helper.make_value_info(name, t))
        else:
            self.report.unbound_outputs.append(name)

    def _inputs(
        self, g: Graph, node_id: str, back: set[tuple[str, str, int]], value_of: Any
    ) -> tuple[list[str], list[str]]:
        """The node's data inputs in port order (compact), and by port (gaps as ``""``, ONNX's
        missing optional input)."""
        edges = []
        for u, _, k, d in g.nx.in_edges(node_id, keys=True, data=True):
            if d["control"]:
                self.report.dropped_control += 1
            elif (u, node_id, k) in back:
                self.report.dropped_back += 1
            else:
                edges.append((d["dst_port"], d["src_port"], u, value_of(u, d["src_port"])))
        edges.sort()
        by_port: list[str] = []
        for port, _, _, name in edges:
            if port >= len(by_port):
                by_port.extend([""] * (port - len(by_port)))
                by_port.append(name)
            else:  # two edges into one port: keep both, the second after the others
                by_port.append(name)
        return [e[3] for e in edges], by_port

    def _source_meta(self, g: Graph, node_id: str, port: int) -> dict[str, Any] | None:
        for u, _, d in g.nx.in_edges(node_id, data=True):
            if d["dst_port"] == port and not d["control"]:
                return _meta(g.node(u), d["src_port"])
        return None

    # -- nodes -------------------------------------------------------------------------------

    def _node_name(self, n: Mapping[str, Any]) -> str:
        """The scope path and the id (``hidden1/linear``), unless the id already starts with it."""
        scope = "/".join(n["scope"])
        return n["id"] if not scope or n["id"].startswith(scope + "/") else f"{scope}/{n['id']}"

    def _doc(self, n: Mapping[str, Any]) -> str:
        parts = [f"{n['kind']} {n['op']}"]
        if n["name"] != n["id"]:
            parts.append(f"name {n['name']}")
        if n["source"]:
            parts.append(f"at {n['source']['file']}:{n['source'].get('line')}")
        return "; ".join(parts)

    def _standard(
        self,
        n: Mapping[str, Any],
        ins: list[str],
        data_in: list[str],
        outs: list[str],
        types: Mapping[str, Any],
    ) -> Any:
        """The node as a standard ONNX op, or None when no op says exactly what it does."""
        if n["subgraphs"] or n["kind"] in ("input", "param"):
            return None
        candidate = None
        if self.from_onnx:
            candidate = self._passthrough(n, ins, outs)
        if candidate is None and n["kind"] == "const":
            candidate = self._constant(n, outs)
        if candidate is None and n["kind"] == "op":
            candidate = self._mapped(n, data_in, outs, types)
        if (
            candidate is None
            or len(candidate.output) < len(outs)
            or not self._accepted(candidate, n, outs, types)
        ):
            return None  # (an op with fewer outputs than the node's users read would leave them dangling)
        candidate.name = self._node_name(n)
        candidate.doc_string = self._doc(n)
        self.report.standard[candidate.op_type] += 1
        return candidate

    def _passthrough(self, n: Mapping[str, Any], ins: list[str], outs: list[str]) -> Any:
        domain, _, op_type = n["op"].rpartition("::")
        domain = "" if domain in ("", "ai.onnx") else domain
        schema = self._schema(op_type, domain)
        if schema is None:
            return None
        attrs = []
        for key, val in n["attrs"].items():
            spec = schema.attributes.get(key)
            attr = self._typed_attribute(key, val, spec.type if spec else None, _meta(n, 0).get("dtype"))
            if attr is None:
                return None
            attrs.append(attr)
        node = self.helper.make_node(op_type, ins, outs[: max(1, len(n["outputs"]))], domain=domain or None)
        node.attribute.extend(attrs)
        return node

    def _constant(self, n: Mapping[str, Any], outs: list[str]) -> Any:
        value = n["attrs"].get("value")
        meta = _meta(n, 0)
        tensor = self._tensor(outs[0], value, meta.get("dtype"), meta.get("shape"))
        if tensor is None:
            return None
        return self.helper.make_node("Constant", [], outs[:1], value=tensor)

    def _mapped(
        self, n: Mapping[str, Any], data_in: list[str], outs: list[str], types: Mapping[str, Any]
    ) -> Any:
        leaf, attrs = _leaf(n["op"]), n["attrs"]
        make = self.helper.make_node
        if any(attrs.get(k) for k in _TF_FALSE):
            return None
        if leaf == "biasadd" and attrs.get("data_format", "NHWC") != "NHWC":  # NCHW: along axis 1
            return None
        plain = all(
            k in _NEUTRAL or k in _TF_FALSE or (k == "data_format" and leaf == "biasadd") for k in attrs
        )
        ranks = [_rank(types.get(v)) for v in data_in]
        if leaf in _UNARY and len(data_in) == 1 and plain:
            return make(_UNARY[leaf], data_in, outs[:1])
        if leaf in _BINARY and len(data_in) == 2 and plain:
            return make(_BINARY[leaf], data_in, outs[:1])
        # torch's linear weight is [out, in]: Gemm with transB, which takes rank-2 operands only.
        if leaf == "linear" and len(data_in) in (2, 3) and not attrs and ranks[:2] == [2, 2]:
            return make("Gemm", data_in, outs[:1], transB=1)
        if leaf == "addmm" and len(data_in) == 3 and not attrs and ranks[1:] == [2, 2]:
            bias, x, w = data_in  # addmm(bias, x, w) = x @ w + bias
            return make("Gemm", [x, w, bias], outs[:1])
        if leaf in ("t", "numpy_t") and len(data_in) == 1 and not attrs and ranks == [2]:
            return make("Transpose", data_in, outs[:1], perm=[1, 0])
        if leaf == "transpose" and len(data_in) == 1 and ranks[0] is not None:
            dims = [attrs.get("arg1", attrs.get("dim0")), attrs.get("arg2", attrs.get("dim1"))]
            if len(attrs) == 2 and all(isinstance(d, int) and -ranks[0] <= d < ranks[0] for d in dims):
                perm = list(range(ranks[0]))
                a, b = (d % ranks[0] for d in dims)
                perm[a], perm[b] = perm[b], perm[a]
                return make("Transpose", data_in, outs[:1], perm=perm)
        if leaf == "gelu" and len(data_in) == 1 and set(attrs) <= {"approximate"}:
            approximate = attrs.get("approximate", "none")
            if approximate in ("none", "tanh"):
                return make("Gelu", data_in, outs[:1], approximate=approximate)
        if leaf in _SOFTMAX and len(data_in) == 1:
            axis = _softmax_axis(attrs)
            return None if axis is None else make(_SOFTMAX[leaf], data_in, outs[:1], axis=axis)
        if leaf in _ARGS:
            return _vision(leaf, _named_args(leaf, attrs), data_in, ranks, outs, make)
        if leaf == "layer_norm" and len(data_in) in (2, 3):  # needs the scale; the bias may be absent
            shape = attrs.get("arg1", attrs.get("normalized_shape"))
            eps = attrs.get("arg4", attrs.get("eps", 1e-5))
            others = set(attrs) - {"arg1", "normalized_shape", "arg4", "eps", "arg5", "cudnn_enable"}
            if isinstance(shape, list) and shape and isinstance(eps, (int, float)) and not others:
                return make("LayerNormalization", data_in, outs[:1], axis=-len(shape), epsilon=float(eps))
        return None

    def _accepted(self, node: Any, n: Mapping[str, Any], outs: list[str], types: Mapping[str, Any]) -> bool:
        """ONNX's checker accepts the node, and its shape inference agrees with the capture."""
        onnx = self.onnx
        try:
            onnx.checker.check_node(node, self.ctx)
        except Exception:
            return False
        schema = self._schema(node.op_type, node.domain)
        if schema is None:
            return False
        if not _types_fit(schema, node, types):
            return False
        known = {v: types[v] for v in node.input if v and v in types and _complete(types[v])}
        if len(known) < len([v for v in node.input if v]):
            return True  # no shapes to infer from: the checks above are all there is
        try:
            inferred = onnx.shape_inference.infer_node_outputs(
                schema,
                node,
                known,
                opset_imports=[self.helper.make_opsetid(d, v) for d, v in self.opsets.items()],
            )
        except Exception:
            return False
        for name in node.output:
            got, want = inferred.get(name), types.get(name)
            if got is None or want is None:
                continue
            if not _agree(got, want):
                return False
        return True

    def _schema(self, op_type: str, domain: str) -> Any:
        version = self.opsets.get(domain)
        if version is None:
            return None
        try:
            return self.onnx.defs.get_schema(op_type, version, domain)
        except Exception:
            return None

    def _custom(
        self, n: Mapping[str, Any], ins: list[str], outs: list[str], chain: list[Graph], paths: list[str]
    ) -> Any:
        """The node as an op of the ``graphscope`` domain: its op, attributes and bodies as they are."""
        node = self.helper.make_node(
            n["op"] or "unknown",
            ins,
            outs,
            name=self._node_name(n),
            domain=CUSTOM_DOMAIN,
            doc_string=self._doc(n),
        )
        # Bodies are named as ONNX's If/Loop name theirs (then_branch, body); an IR attribute of
        # the same name (TF's then_branch holds the function's name) yields that name to them.
        bodies: dict[str, str] = {}
        for sub_name in n["subgraphs"]:
            attr = sub_name.removeprefix(n["id"] + ".") or sub_name
            while attr in bodies:
                attr += "_"
            bodies[attr] = sub_name
        for key in sorted(n["attrs"]):
            name = key
            while name in bodies:
                name += "_attr"
            node.attribute.append(self._loose_attribute(name, n["attrs"][key]))
        for attr, sub_name in bodies.items():
            found = _resolve(chain, paths, sub_name)
            if found is None:
                continue
            sub, path = found
            if path in paths:  # a body that runs itself: embedding it would never end
                self.report.recursive.append(path)
                node.attribute.append(self.helper.make_attribute(attr, f"recursive call of {path}"))
                continue
            body = self.graph(sub, chain=[*chain, sub], paths=[*paths, path], main=False)
            node.attribute.append(self.helper.make_attribute(attr, body))
        self.report.custom[n["op"] or "unknown"] += 1
        return node

    # -- values and attributes ---------------------------------------------------------------

    def type_proto(self, meta: Mapping[str, Any] | None, *, need_shape: bool = False) -> Any:
        """The IR's ``{shape, dtype}`` as an ONNX tensor type; None when it says nothing (or
        has no shape and one is needed)."""
        meta = meta or {}
        dtype, shape = meta.get("dtype"), meta.get("shape")
        elem = _ELEM_TYPES.get(dtype or "", 0)
        if shape is None and (need_shape or elem == 0):
            return None
        # A dim outside int64 (the IR's ints are unbounded) is kept as a symbolic dim, its digits.
        dims = None if shape is None else [_dim(d) for d in shape]
        return self.helper.make_tensor_type_proto(elem, dims)

    def _io_type(self, meta: Mapping[str, Any] | None, main: bool) -> Any:
        """The type of a graph input or output: the main graph's need a shape (None without
        one); a body's may say nothing at all."""
        t = self.type_proto(meta, need_shape=main)
        if t is None and not main:
            t = self.helper.make_tensor_type_proto(0, None)
        return t

    def _has_shape(self, n: Mapping[str, Any], port: int) -> bool:
        return _meta(n, port).get("shape") is not None

    def _tensor(self, name: str, value: Any, dtype: str | None, shape: Sequence[Any] | None) -> Any:
        """A TensorProto for a literal the IR holds in full (not a summary), or None."""
        import numpy as np

        if not _literal(value):
            return None
        if dtype not in _ELEM_TYPES:
            if dtype is not None:
                return None  # NoneType, Device, List[int]: not a tensor
            dtype = _guess_dtype(value)
            if dtype is None:
                return None
        try:
            np_dtype: Any = object if _ELEM_TYPES[dtype] == 8 else np.dtype(dtype)
            with warnings.catch_warnings():  # 1e300 as float32 is not the value the IR holds
                warnings.simplefilter("error")
                array = np.asarray(value, dtype=np_dtype)
        except (TypeError, ValueError, OverflowError, RuntimeWarning):
            return None
        if shape is not None and all(isinstance(d, int) for d in shape) and list(array.shape) != list(shape):
            if array.size != math.prod(shape):
                return None
            array = array.reshape(shape)
        try:
            return self.onnx.numpy_helper.from_array(array, name)
        except Exception:
            return None

    def _typed_attribute(self, key: str, value: Any, attr_type: Any, dtype: str | None) -> Any:
        """An attribute of the type the op's schema declares, or None when the value is not one."""
        if attr_type is None:
            return None
        kinds = self.onnx.defs.OpSchema.AttrType
        helper = self.helper
        if attr_type == kinds.TENSOR:
            tensor = self._tensor(key, value, dtype, None)
            return None if tensor is None else helper.make_attribute(key, tensor)
        checks = {
            kinds.INT: lambda v: _int64(v) or isinstance(v, bool),
            kinds.FLOAT: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            kinds.STRING: lambda v: isinstance(v, str),
            kinds.INTS: lambda v: isinstance(v, list) and all(_int64(x) for x in v),
            kinds.FLOATS: lambda v: isinstance(v, list) and all(isinstance(x, (int, float)) for x in v),
            kinds.STRINGS: lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        }
        check = checks.get(attr_type)
        if check is None or not check(value):
            return None
        if attr_type == kinds.FLOAT:
            value = float(value)
        elif attr_type == kinds.FLOATS:
            value = [float(x) for x in value]
        elif attr_type == kinds.INT:
            value = int(value)
        return helper.make_attribute(key, value, attr_type=_ATTR_PROTO[attr_type.name])

    def _loose_attribute(self, key: str, value: Any) -> Any:
        """Any IR attribute on a custom op: ints, floats, strings and their lists as such,
        anything else as its JSON text."""
        helper = self.helper
        if isinstance(value, bool):
            return helper.make_attribute(key, int(value))
        if _int64(value) or isinstance(value, str) or (isinstance(value, float) and math.isfinite(value)):
            return helper.make_attribute(key, value)
        if isinstance(value, list) and value:
            if all(_int64(x) for x in value) or all(isinstance(x, str) for x in value):
                return helper.make_attribute(key, value)
            if all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in value
            ):
                return helper.make_attribute(key, [float(x) for x in value])
        return helper.make_attribute(key, json.dumps(value, ensure_ascii=False, sort_keys=True))


def _int64(value: Any) -> bool:
    """An int (not a bool) that fits ONNX's int64 attributes."""
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


_ATTR_PROTO = {"INT": 2, "FLOAT": 1, "STRING": 3, "INTS": 7, "FLOATS": 6, "STRINGS": 8}


def _meta(n: Mapping[str, Any], port: int) -> dict[str, Any]:
    outputs = n["outputs"]
    return dict(outputs[port]) if port < len(outputs) else {"shape": None, "dtype": None}


def _resolve(chain: list[Graph], paths: list[str], name: str) -> tuple[Graph, str] | None:
    """Body ``name`` as the IR resolves it: in the graph that runs it or an enclosing one."""
    for graph, path in zip(reversed(chain), reversed(paths)):
        if name in graph.subgraphs:
            return graph.subgraphs[name], (f"{path}/{name}" if path else name)
    return None


def _literal(value: Any) -> bool:
    """A scalar, a string, or a (nested) list of them: a value the IR holds in full."""
    if isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return True
    if isinstance(value, list):
        return all(_literal(v) for v in value)
    return False  # None, or a summary such as {"len": n, "head": [...]}


def _guess_dtype(value: Any) -> str | None:
    flat = list(_flatten(value))
    if not flat:
        return None
    if all(isinstance(v, bool) for v in flat):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in flat):
        return "int64"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flat):
        return "float32"
    if all(isinstance(v, str) for v in flat):
        return "str"
    return None


def _flatten(value: Any) -> Iterable[Any]:
    if isinstance(value, list):
        for v in value:
            yield from _flatten(v)
    else:
        yield value


# torch's argument names by position (torch.export records a non-tensor argument N as `argN`,
# fx keeps keyword arguments by name): input and weight are edges, so they are absent here.
_ARGS = {
    "conv2d": ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
    "batch_norm": (
        "input",
        "weight",
        "bias",
        "running_mean",
        "running_var",
        "training",
        "momentum",
        "eps",
        "cudnn_enabled",
    ),
    "max_pool2d": ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "adaptive_avg_pool2d": ("input", "output_size"),
    "flatten": ("input", "start_dim", "end_dim"),
}


def _named_args(leaf: str, attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The node's non-tensor arguments by torch's names, or None if one is not torch's."""
    names = _ARGS[leaf]
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        name = (
            names[int(key[3:])]
            if key.startswith("arg") and key[3:].isdigit() and int(key[3:]) < len(names)
            else key
        )
        if name not in names:
            return None
        out[name] = value
    return out


def _pair(value: Any, default: int) -> list[int] | None:
    """torch's int-or-pair arguments (``stride=2``, ``padding=[3, 3]``) as a pair."""
    if value is None:
        return [default, default]
    if isinstance(value, int) and not isinstance(value, bool):
        return [value, value]
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return list(value)
    return None  # padding="same", a 1-element list: not worth guessing


def _vision(
    leaf: str,
    args: dict[str, Any] | None,
    data_in: list[str],
    ranks: list[int | None],
    outs: list[str],
    make: Any,
) -> Any:
    """torch's 2-D convolution, inference batch norm, max pooling, global pooling and flatten."""
    if args is None or not data_in or (ranks[0] not in (None, 4) and leaf != "flatten"):
        return None
    if leaf == "conv2d" and len(data_in) in (2, 3) and args.get("bias") is None:
        stride, padding, dilation = (
            _pair(args.get(k), d) for k, d in (("stride", 1), ("padding", 0), ("dilation", 1))
        )
        groups = args.get("groups", 1)
        if stride and padding and dilation and isinstance(groups, int):
            return make(
                "Conv", data_in, outs[:1], strides=stride, pads=padding * 2, dilations=dilation, group=groups
            )
    if leaf == "batch_norm" and len(data_in) == 5 and args.get("training") is False:
        eps, momentum = args.get("eps", 1e-5), args.get("momentum", 0.1)
        if isinstance(eps, (int, float)) and isinstance(momentum, (int, float)):
            return make("BatchNormalization", data_in, outs[:1], epsilon=float(eps), momentum=float(momentum))
    if leaf == "max_pool2d" and len(data_in) == 1:
        kernel = _pair(args.get("kernel_size"), 0)
        stride = _pair(args.get("stride"), 0) if args.get("stride") not in (None, []) else kernel
        padding, dilation = _pair(args.get("padding"), 0), _pair(args.get("dilation"), 1)
        if kernel and kernel != [0, 0] and stride and padding and dilation:
            return make(
                "MaxPool",
                data_in,
                outs[:1],
                kernel_shape=kernel,
                strides=stride,
                pads=padding * 2,
                dilations=dilation,
                ceil_mode=int(bool(args.get("ceil_mode", False))),
            )
    if leaf == "adaptive_avg_pool2d" and len(data_in) == 1 and _pair(args.get("output_size"), 0) == [1, 1]:
        return make("GlobalAveragePool", data_in, outs[:1])
    if leaf == "flatten" and len(data_in) == 1 and args.get("end_dim", -1) == -1:
        start = args.get("start_dim", 0)
        if isinstance(start, int) and start >= 0:  # ONNX's Flatten always makes 2-D: inference checks
            return make("Flatten", data_in, outs[:1], axis=start)
    return None


def _softmax_axis(attrs: Mapping[str, Any]) -> int | None:
    """TensorFlow's Softmax works on the last axis; torch names it (``dim`` or export's ``arg1``)."""
    if all(k in _NEUTRAL for k in attrs):
        return -1
    dim = attrs.get("dim", attrs.get("arg1"))
    rest = {k: v for k, v in attrs.items() if k not in ("dim", "arg1")}
    if isinstance(dim, int) and not isinstance(dim, bool) and all(v in (None, False) for v in rest.values()):
        return dim
    return None


def _types_fit(schema: Any, node: Any, types: Mapping[str, Any]) -> bool:
    """The dtypes the capture knows fit the op's type constraints: values the schema ties to
    one type variable (Add's A, B and C are all ``T``) have one dtype. This catches torch's
    float * int64 scalar even when shapes are unknown and inference cannot run."""
    seen: dict[str, int] = {}
    params = [(schema.inputs, node.input), (schema.outputs, node.output)]
    for formal, actual in params:
        for i, name in enumerate(actual):
            if not name or name not in types or not formal:
                continue
            type_str = formal[min(i, len(formal) - 1)].type_str  # the last one may be variadic
            elem = types[name].tensor_type.elem_type
            if elem and seen.setdefault(type_str, elem) != elem:
                return False
    return True


def _rank(t: Any) -> int | None:
    if t is None or not t.tensor_type.HasField("shape"):
        return None
    return len(t.tensor_type.shape.dim)


def _complete(t: Any) -> bool:
    """A type shape inference can work from: element type and rank known."""
    return bool(t.tensor_type.elem_type) and t.tensor_type.HasField("shape")


def _agree(got: Any, want: Any) -> bool:
    """ONNX's inferred type against the captured one: dtypes and known dims must match."""
    g, w = got.tensor_type, want.tensor_type
    if g.elem_type and w.elem_type and g.elem_type != w.elem_type:
        return False
    if g.HasField("shape") and w.HasField("shape"):
        if len(g.shape.dim) != len(w.shape.dim):
            return False
        for a, b in zip(g.shape.dim, w.shape.dim):
            if a.HasField("dim_value") and b.HasField("dim_value") and a.dim_value != b.dim_value:
                return False
    return True
