"""A scripted TorchScript graph read from its printed form, for ``torch_jit``.

A scripted TransformerEncoder has 17,769 nodes in 4,954 blocks. Reading them through pybind
takes 0.4 s, 0.16 s of it asking each node its source range (which formats the code around
it); printing the graph and reading the text takes 0.17 s. The printed form is the one
``torch._C.parse_ir`` reads back. It is used when every line is in the plain form below (value
names made of word characters and dots, types this module knows); anything else — module
scopes of a traced archive, a tensor type with sizes, an unusual name — is read through
pybind. Constant values, and whether an attribute is a module, are asked of the few nodes
concerned (the text prints a bool constant as 0 or 1 and names no module type as such).
"""

from __future__ import annotations

import functools
import os
import re
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from graphscope.tracers.torch_jit import (
    _PLACED,
    _PY_TYPES,
    _attrs,
    _BlockOf,
    _graph_inputs,
    _is_module_type,
    _list_meta,
    _ModuleScopes,
    _Node,
    _user_frame,
    _Value,
    _value_meta,
)

_NAME = r"%[\w.]+"
_BARE_NAME = re.compile(r"[\w.]+")
_NAMES = re.compile(rf"(?:{_NAME}(?:, {_NAME})*)?")
_NODE_LINE = re.compile(r"^ *(?:(%.*?) )?= ([\w:]+)(.*)$")
_BLOCK_LINE = re.compile(r"^ *block\d+\((.*)\):$")
_RETURN_LINE = re.compile(r"^ *(?:->|return) \((.*)\)$")
_SOURCE = re.compile(r"(.*):(\d+):\d+$")  # matched at the text after " # "


class NotPlain(Exception):
    """The printed graph has a line the parser does not know: read the graph by pybind."""


class PrintedReader:
    """Reads a scripted graph from its printed form (see above); raises NotPlain."""

    def __init__(self, ts_graph: Any, scopes: _ModuleScopes) -> None:
        self.ts_graph = ts_graph
        self.scopes = scopes
        self.cwd = os.getcwd()
        # What the text does not say exactly: constant values (and types: a function is printed
        # as `Function`) and whether a GetAttr returns a module.
        self.constants = {
            n.output().debugName(): (_attrs(n), _value_meta(n.output()))
            for n in ts_graph.findAllNodes("prim::Constant")
            if n.outputsSize() == 1
        }
        self.attributes = {
            n.output().debugName(): (n.s("name"), _is_module_type(n.output().type()))
            for n in ts_graph.findAllNodes("prim::GetAttr")
        }

    def graph(self) -> tuple[_BlockOf, list[str]]:
        params, modules = _graph_inputs(self.ts_graph)
        try:
            lines = str(self.ts_graph).splitlines()
        except (UnicodeDecodeError, MemoryError):  # a damaged archive's debug information
            raise NotPlain from None  # (std::bad_alloc for a length gone wrong): pybind says what
        # The header `graph(%self : ..., %x : Tensor):` may span lines.
        start = next((i for i, line in enumerate(lines) if line.endswith("):")), None)
        if start is None:
            raise NotPlain
        self.lines, self.at = lines, start + 1
        nodes, returns = self.nodes()
        if self.at != len(lines) or returns != [v.debugName() for v in self.ts_graph.outputs()]:
            raise NotPlain
        self.add_scopes(nodes)
        return _BlockOf(params, nodes, returns), modules

    def add_scopes(self, nodes: list[_Node]) -> None:
        """The text has no module scopes: ask each node its module. ``findAllNodes(kind)``
        lists one kind's nodes in print order, in C++; walking the graph node by node through
        pybind's iterator instead costs 6 µs a node (0.14 s for 17k, twice this way)."""
        by_kind: dict[str, list[_Node]] = defaultdict(list)
        for node in _in_order(nodes):
            by_kind[node.kind].append(node)
        for kind, records in by_kind.items():
            if kind in _PLACED:
                continue  # a constant or a module attribute has no module of its own
            found = self.ts_graph.findAllNodes(kind)
            if len(found) != len(records):
                raise NotPlain
            for record, node in zip(records, found):
                hierarchy = node.getModuleHierarchy()
                if hierarchy:
                    record.scope.extend(self.scopes(hierarchy))

    def nodes(self) -> tuple[list[_Node], list[str]]:
        """The nodes up to the next `-> (...)` or `return (...)`, and the names it returns."""
        lines, nodes = self.lines, list[_Node]()
        while self.at < len(lines):
            line = lines[self.at]
            self.at += 1
            if line.lstrip(" ")[:1] in ("-", "r"):  # `-> (...)` or `return (...)`
                end = _RETURN_LINE.match(line)
                if end is None:
                    raise NotPlain
                return nodes, _names(end[1])
            nodes.append(self.node(line))
        raise NotPlain

    def node(self, line: str) -> _Node:
        found = _NODE_LINE.match(line)
        if found is None:
            raise NotPlain
        outs, kind, rest = found.groups()
        source = None
        cut = rest.rfind(" # ")
        if cut >= 0 and (where := _SOURCE.match(rest, cut + 3)) is not None:
            rest = rest[:cut]
            source = _user_frame(where[1], int(where[2]), self.cwd)
        # `[attributes](%inputs)`: the inputs are the last parenthesis (names have none).
        opening = rest.rfind("(")
        if opening < 0 or rest[-1] != ")" or (opening > 0 and (rest[0] != "[" or rest[opening - 1] != "]")):
            raise NotPlain
        inputs = _names(rest[opening + 1 : -1])
        extra: Any = None
        if kind == "prim::Constant":
            name = outs.removeprefix("%").partition(" : ")[0]
            if name not in self.constants:
                raise NotPlain
            extra, meta = self.constants[name]
            outputs = [_Value(name, meta)]
        else:
            outputs = [_typed(part) for part in outs.split(", %")] if outs else []
        if kind == "prim::GetAttr":
            extra = self.attributes.get(outputs[0].name) if len(outputs) == 1 else None
            if extra is None:
                raise NotPlain
        elif kind == "prim::ListConstruct" and len(outputs) == 1:
            outputs = [_Value(outputs[0].name, _list_meta(outputs[0].meta["dtype"], len(inputs)))]
        blocks = []
        lines = self.lines
        while self.at < len(lines) and lines[self.at].lstrip(" ").startswith("block"):
            header = _BLOCK_LINE.match(lines[self.at])
            if header is None:
                raise NotPlain
            self.at += 1
            params = [_typed(part) for part in header[1].split(", %")] if header[1] else []
            body, returns = self.nodes()
            blocks.append(_BlockOf(params, body, returns))
        return _Node(kind, outputs, inputs, blocks, source, [], extra)


def _in_order(nodes: list[_Node]) -> Iterator[_Node]:
    """Nodes in print order: each node, then the nodes of its blocks."""
    for node in nodes:
        yield node
        for block in node.blocks:
            yield from _in_order(block.nodes)


def _names(text: str) -> list[str]:
    if not _NAMES.fullmatch(text):
        raise NotPlain
    return [part[1:] for part in text.split(", ")] if text else []


def _typed(part: str) -> _Value:
    """``%x.1 : Tensor`` (or ``x.1 : Tensor``, after a split on ``, %``) -> its name and meta."""
    name, sep, type_text = part.removeprefix("%").partition(" : ")
    if not sep or not _BARE_NAME.fullmatch(name):
        raise NotPlain
    return _Value(name, _printed_meta(type_text))


@functools.lru_cache(maxsize=1024)
def _printed_meta(type_text: str) -> dict[str, Any]:
    """What _value_meta() says of a value of this printed type (one dict per type, shared:
    Graph.add_node copies what it is given)."""
    if type_text == "Tensor":
        return {"shape": None, "dtype": None}
    if type_text in _PY_TYPES:
        return {"shape": [], "dtype": _PY_TYPES[type_text]}
    if type_text == "Function":
        raise NotPlain  # pybind names the function; only constants have this type, read there
    return {"shape": None, "dtype": annotation(type_text)}


_TYPE_TOKEN = re.compile(r"[\w.]+|[()\[\],?]")
_GENERIC = frozenset({"Dict", "Future", "RRef", "Await", "Union"})


def annotation(type_text: str) -> str:
    """A type as the printed graph spells it (``int[]``, ``Tensor?``, ``(int, Tensor)``) as
    pybind's ``str(type)`` does (``List[int]``, ``Optional[Tensor]``, ``Tuple[int, Tensor]``).
    A tensor type with sizes (``Float(2, 3, ...)``) or anything unfamiliar raises NotPlain."""
    tokens = _TYPE_TOKEN.findall(type_text)
    if "".join(tokens) != type_text.replace(" ", ""):
        raise NotPlain
    tokens.append("")  # the end

    def parse(i: int) -> tuple[str, int]:
        token = tokens[i]
        if token == "(" or (token in _GENERIC and tokens[i + 1] == "("):
            head = "Tuple" if token == "(" else token
            i += 1 if token == "(" else 2
            items: list[str] = []
            while tokens[i] != ")":
                item, i = parse(i)
                items.append(item)
                if tokens[i] == ",":
                    i += 1
                elif tokens[i] != ")":
                    raise NotPlain
            text, i = f"{head}[{', '.join(items) or '()'}]", i + 1
        elif (token and token[0].isalpha()) or token.startswith("_"):
            if tokens[i + 1] == "(":
                raise NotPlain  # Float(2, 3, strides=...): leave tensor types to pybind
            text, i = token, i + 1
        else:
            raise NotPlain
        while tokens[i] in ("[", "?"):
            if tokens[i] == "?":
                text, i = f"Optional[{text}]", i + 1
            elif tokens[i + 1] == "]":
                text, i = f"List[{text}]", i + 2
            else:
                raise NotPlain
        return text, i

    text, end = parse(0)
    if tokens[end] != "":
        raise NotPlain
    return text
