"""Fuzz targets and input strategies, shared by tests/test_fuzz.py (a few dozen examples each,
in every test run) and bench/fuzz.py (minutes of them, by hand).

Each target takes one generated input and either succeeds or raises :class:`GraphscopeError`;
any other exception is a bug the fuzzer reports. A graph that loads must also be usable: it
is written back and read again, summarised and turned into DOT.
"""

from __future__ import annotations

import copy
import json
import tempfile
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from graphscope import ir, loader, tracers
from graphscope.errors import GraphscopeError
from graphscope.rendering import text as summary
from graphscope.rendering.dot import DotOptions, to_dot

from .conftest import or_gate_graph

# -- saved graphs --------------------------------------------------------------------------------


def sample_graph() -> ir.Graph:
    """The OR-gate graph plus a node running a subgraph with a subgraph of its own."""
    g = or_gate_graph()
    g.add_node("loop", op="While", kind="control", subgraphs=["body"], attrs={"n": 3, "s": "x"})
    g.add_edge("x", "loop", src_port=0, dst_port=0)
    body = ir.Graph("body", framework="torch", capture="fx")
    body.add_node("i", op="placeholder", kind="input", outputs=[{"shape": ["s0", None], "dtype": "int64"}])
    body.add_node("cond", op="If", kind="control", subgraphs=["then"], source={"file": "m.py", "line": 3})
    body.add_edge("i", "cond")
    then = ir.Graph("then")
    then.add_node("k", op="const", kind="const", attrs={"value": 1.5})
    body.subgraphs["then"] = then
    body.inputs, body.outputs = ["i"], ["cond"]
    g.subgraphs["body"] = body
    return g


VALID_TEXT = ir.dumps(sample_graph())
VALID_DOC: dict[str, Any] = json.loads(VALID_TEXT)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
# Values that are nearly right: the wrong type, a bound, another node's id.
tricky_values = st.sampled_from(
    [None, True, 0, -1, 2**62, 2**63, 1.5, "", "x", "fc0", "nowhere", [], {}, [None], ["x"], {"file": 1}]
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document: keys of objects, indices of arrays."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


@cache
def _valid_paths() -> list[tuple[Any, ...]]:
    return _paths(VALID_DOC)[1:]


@st.composite
def mutated_documents(draw: st.DrawFn) -> str:
    """The sample graph's JSON with one to four values replaced, deleted or added."""
    doc = copy.deepcopy(VALID_DOC)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(_valid_paths()))
        parent: Any = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            leaf = path[-1]
            parent[leaf]  # an earlier mutation may have removed it, or made it a string
        except (KeyError, IndexError, TypeError):
            continue
        if not isinstance(parent, (dict, list)):
            continue
        action = draw(st.sampled_from(["replace", "tricky", "delete", "add"]))
        if action == "delete":
            del parent[leaf]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=6))] = draw(json_values)
        elif action == "add" and isinstance(parent, list):
            parent.insert(leaf, draw(json_values | tricky_values))
        else:
            parent[leaf] = draw(tricky_values if action == "tricky" else json_values)
    return json.dumps(doc, ensure_ascii=draw(st.booleans()))


@st.composite
def mutated_bytes(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with one to six byte-level edits: set, flip, delete, insert, truncate, repeat."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["set", "flip", "delete", "insert", "truncate", "repeat"]))
        if action == "set":
            data[i] = draw(st.integers(0, 255))
        elif action == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif action == "delete":
            del data[i : i + draw(st.integers(1, 16))]
        elif action == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif action == "truncate":
            del data[i:]
        else:
            j = draw(st.integers(i, min(len(data), i + 64)))
            data[i:i] = data[i:j]
    return bytes(data)


json_inputs = (
    mutated_documents()
    | json_values.map(json.dumps)
    | st.fixed_dictionaries({"format": st.just(ir.FORMAT), "version": st.just(1), "graph": json_values}).map(
        json.dumps
    )
    | mutated_bytes(VALID_TEXT.encode()).map(lambda b: b.decode("utf-8", "replace"))
)


def json_target(text: str) -> ir.Graph | None:
    """ir.loads, then everything a loaded graph goes through: dumps/loads, info, DOT."""
    try:
        graph = ir.loads(text, source="fuzz.json")
    except GraphscopeError:
        return None
    again = ir.loads(ir.dumps(graph), source="again.json")
    assert again == graph, "a loaded graph does not survive being written and read back"
    summary.info_document(graph)
    to_dot(graph, DotOptions(legend=False))
    return graph


# -- DOT and SVG ---------------------------------------------------------------------------------

names = st.text(min_size=1, max_size=60)


def name_graph(texts: list[str]) -> ir.Graph:
    """One input node per text: the text is its name, its op (after "Op"), its scope, its
    attribute's key and value."""
    g = ir.Graph(texts[0], framework=texts[-1], capture="fuzz")
    for i, t in enumerate(texts):
        g.add_node(f"n{i}", name=t, op=f"Op{t}", kind="input", scope=[t], attrs={t: t, "reason": t})
        if i:
            g.add_edge(f"n{i - 1}", f"n{i}", src_port=0, dst_port=0)
    g.inputs = ["n0"]
    return g


def _shown(text: str, width: int) -> str:
    """What the drawing shows of a name: clipped, control characters as \\xNN, spaces folded."""
    from graphscope.rendering.dot import _clip, _printable

    return " ".join(_printable(_clip(text, width)).split())


def svg_target(texts: list[str]) -> str:
    """DOT from hostile names parses with ``dot``; the SVG is XML, scriptless, names as text."""
    from graphscope.rendering.svg import svg_text

    layout = to_dot(name_graph(texts), DotOptions(legend=False, show_params=True))
    svg = svg_text(layout, timeout=60)
    root = ET.fromstring(svg)
    tags = {el.tag.rsplit("}", 1)[-1].lower() for el in root.iter()}
    assert "script" not in tags and "foreignobject" not in tags, tags
    assert not [a for el in root.iter() for a in el.attrib if a.lower().startswith("on")]
    drawn = {" ".join((el.text or "").split()) for el in root.iter() if el.tag.endswith("}text")}
    for t in texts:
        assert _shown(f"Op{t}", 60) in drawn, (f"Op{t}", sorted(drawn))
        if not t.split(".")[0].isdigit():  # TorchScript-like numeric names are left out on purpose
            assert _shown(t, 48) in drawn, (t, sorted(drawn))
    return svg


# -- framework files (GraphDef, ONNX): bytes in, a Graph or one sentence out ---------------------------


def file_target(data: bytes, suffix: str) -> ir.Graph | None:
    """Write ``data`` as a file and trace it as the CLI would (load, then capture)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            found = loader.load_target(path)
            return tracers.capture_target(found)
        except GraphscopeError:
            return None


@cache
def graph_def_seed() -> tuple[bytes, bytes]:
    """A small GraphDef (binary, text) with a name scope, a constant and a control dependency."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 2], name="x")
        w = tf.constant([[1.0, 0.0], [0.0, 1.0]], name="dense/w")
        h = tf.matmul(x, w, name="dense/MatMul")
        with tf.control_dependencies([h]):
            y = tf.nn.relu(h, name="y")
        tf.identity(y, name="out")
    graph_def = graph.as_graph_def()
    return graph_def.SerializeToString(), str(graph_def).encode()


@cache
def onnx_seed() -> bytes:
    """A small ONNX model: an initializer, a MatMul, an If with two bodies."""
    from onnx import TensorProto, helper

    def branch(name: str, op: str) -> Any:
        return helper.make_graph(
            [helper.make_node(op, ["h"], [f"{name}_out"])],
            name,
            [],
            [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [1, 2])],
        )

    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="block/MatMul"),
        helper.make_node("ReduceSum", ["h"], ["s"], keepdims=0),
        helper.make_node("Cast", ["s"], ["c"], to=TensorProto.BOOL),
        helper.make_node(
            "If", ["c"], ["y"], then_branch=branch("then", "Relu"), else_branch=branch("else", "Neg")
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "fuzz",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        initializer=[helper.make_tensor("w", TensorProto.FLOAT, [2, 2], [1.0, 0.0, 0.0, 1.0])],
    )
    data: bytes = helper.make_model(graph).SerializeToString()
    return data


# -- the printed-TorchScript reader ------------------------------------------------------------

_SCRIPTED_MODULE = """
import torch
from torch import nn


class Fuzzed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleDict({KEY: nn.Linear(2, 2)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks.values():
            x = block(x)
        label = FIRST
        if label == SECOND:
            x = x + 1
        if bool(x.sum() > 0):
            raise ValueError(THIRD)
        return x
"""


# Attribute names: mostly Python names (so that most modules script), some arbitrary text.
module_keys = st.one_of(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True), names)


def scripted_text_target(folder: Any, key: str, strings: list[str]) -> None:
    """A scripted module whose attribute name and string constants are arbitrary text: the
    printed-graph reader must read the graph as pybind does, or leave it to pybind."""
    import importlib.util

    import torch

    from graphscope.tracers import _torchscript_text as printed_form
    from graphscope.tracers import torch_jit

    source = _SCRIPTED_MODULE.replace("KEY", repr(key))
    for placeholder, text in zip(("FIRST", "SECOND", "THIRD"), strings):
        source = source.replace(placeholder, repr(text))
    path = folder / f"fuzzed_{abs(hash((key, *strings)))}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        model = module.Fuzzed()
        ts_graph = torch.jit.script(model).inlined_graph
    except Exception:
        return  # a key nn.Module or TorchScript refuses: nothing to read
    scopes = torch_jit._ModuleScopes((n, type(m).__name__) for n, m in model.named_modules())
    pybind = torch_jit._Reader(traced=False, scopes=scopes).graph(ts_graph)
    try:
        printed = printed_form.PrintedReader(ts_graph, scopes).graph()
    except printed_form.NotPlain:
        return
    assert printed == pybind


# -- GraphDefs whose shapes hang on file-reading ops: importing must run none of them ------------

IO_SECRET = b"\x15\xcd\x5b\x07\x2a\x7a\x01\x00"  # two int32 dims (123456789, 96810) if read
IO_SECRET_DIMS = ("123456789", "96810")

# (op, input dtypes, output dtype, attrs): a GraphDef is a random DAG of these, typed.
_IO_OPS: list[tuple[str, tuple[str, ...], str, dict[str, Any]]] = [
    ("ReadFile", ("string",), "string", {}),
    ("MatchingFiles", ("string",), "string", {}),
    ("DecodeRaw", ("string",), "int32", {"out_type": "int32"}),
    ("StringLength", ("string",), "int32", {}),
    ("Add", ("int32", "int32"), "int32", {"T": "int32"}),
    ("Abs", ("int32",), "int32", {"T": "int32"}),
    ("Identity", ("int32",), "int32", {"T": "int32"}),
    ("Fill", ("int32", "float"), "float", {"T": "float", "index_type": "int32"}),
    ("Reshape", ("float", "int32"), "float", {"T": "float", "Tshape": "int32"}),
    ("Shape", ("float",), "int32", {"T": "float", "out_type": "int32"}),
]


@st.composite
def io_graph_defs(draw: st.DrawFn) -> list[tuple[str, list[int]]]:
    """A recipe: (op, indices of earlier nodes it reads). Nodes 0-2 are a path Const, an
    int32 Const and a float Const; an input of the wrong dtype is replaced by the latest node of
    its dtype (so that chains like Fill(DecodeRaw(ReadFile(path))) are common)."""
    recipe = []
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(range(len(_IO_OPS))))
        ins = [draw(st.integers(0, 2 + len(recipe))) for _ in _IO_OPS[op][1]]
        recipe.append((_IO_OPS[op][0], ins))
    return recipe


def io_graph_def_target(recipe: list[tuple[str, list[int]]], secret: str) -> ir.Graph | None:
    """Build the recipe's GraphDef, its paths naming ``secret``, and trace it: the secret's
    bytes must not reach the IR (nothing may run while importing)."""
    from tensorflow.core.framework import graph_pb2
    from tensorflow.python.framework import dtypes, tensor_util

    graph_def = graph_pb2.GraphDef()
    dtypes_of = ["string", "int32", "float"]
    for name, value in (("path", secret.encode()), ("dims", [2, 3]), ("one", 1.0)):
        node = graph_def.node.add(name=name, op="Const")
        proto = tensor_util.make_tensor_proto(value)
        node.attr["dtype"].type = proto.dtype
        node.attr["value"].tensor.CopyFrom(proto)
    spec = {op: (ins, out, attrs) for op, ins, out, attrs in _IO_OPS}
    for i, (op, picks) in enumerate(recipe):
        ins, out, attrs = spec[op]
        node = graph_def.node.add(name=f"{op.lower()}_{i}", op=op)
        for want, pick in zip(ins, picks):
            src = pick if dtypes_of[pick] == want else len(dtypes_of) - 1 - dtypes_of[::-1].index(want)
            node.input.append(graph_def.node[src].name)
        for key, dtype in attrs.items():
            node.attr[key].type = dtypes.as_dtype(dtype).as_datatype_enum
        dtypes_of.append(out)
    graph = file_target(graph_def.SerializeToString(), ".pb")
    if graph is not None:
        text = ir.dumps(graph)
        assert not [d for d in IO_SECRET_DIMS if d in text], "the secret file was read while importing"
    return graph


# -- text from a file in --json output and shell completion ---------------------------------------

_SHELL_SPECIAL = set("$`'\"\\;|&<>()*?[]{}~!#^ ")


def text_outputs_target(texts: list[str]) -> None:
    """Node ids of arbitrary text: ``info --json`` carries none of them raw enough to drive a
    terminal, and ``render --highlight`` completion offers only plain shell words."""
    from click.shell_completion import BashComplete

    from graphscope.cli import cli
    from graphscope.rendering.terminal import UNSAFE, escape_json

    g = ir.Graph(texts[0], framework="torch", capture="fuzz")
    for i, t in enumerate(dict.fromkeys(texts)):
        g.add_node(t, name=t, op=f"Op{t}", kind="input" if i == 0 else "op", scope=[t])
    g.inputs = [texts[0]]
    doc = summary.info_document(g)
    out = escape_json(json.dumps(doc, indent=2, ensure_ascii=False))
    assert not UNSAFE.search(out), out
    assert json.loads(out) == json.loads(json.dumps(doc))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "g.json"
        ir.save(g, path)
        shell = BashComplete(cli, {}, "graphscope", "_GRAPHSCOPE_COMPLETE")
        items = shell.get_completions(["render", str(path), "--highlight"], "")
        lines = "\n".join(shell.format_completion(item) for item in items).splitlines()
    assert len(lines) == len(items), "a completion broke the one-item-a-line protocol"
    for item in items:
        value = str(item.value)
        assert value in g and not value.startswith("-"), value
        assert value.isprintable() and not set(value) & _SHELL_SPECIAL, value
