"""IR -> Google Model Explorer's graph JSON (a ``GraphCollection``), written without importing it.

The schema is ``model_explorer.graph_builder`` (ai-edge-model-explorer 0.1.x): a collection
``{"label", "graphs": [Graph]}``, the form Model Explorer's JSON loader takes as it is. Each graph
is ``{"id", "nodes": [GraphNode], "groupNodeAttributes"}`` and each node
``{"id", "label", "namespace", "subgraphIds", "attrs", "incomingEdges", "outputsMetadata",
"inputsMetadata"}``. How the IR maps onto it:

- ``scope`` -> ``namespace`` (``"layer1/0/conv1"``): Model Explorer draws each scope as a layer
  that opens on a click, so a big model starts folded.
- edges -> each target's ``incomingEdges`` with the ports as ``sourceNodeOutputId`` /
  ``targetNodeInputId``; a TF control dependency goes to an input id ``control<k>`` whose
  ``inputsMetadata`` says so.
- ``outputs`` -> ``outputsMetadata``: ``tensor_shape`` (``float32[4,2]``, the key Model Explorer's
  own adapters use, shown on edges), plus a stepped graph's value statistics.
- control-flow bodies and function libraries -> more graphs in the collection, their ids the
  subgraph paths (``"if.then"``, ``"cond/then"``); a node that runs one lists it in
  ``subgraphIds``, which Model Explorer offers as a jump into that graph.
- the graph's framework, capture method and notes -> ``groupNodeAttributes[""]`` (the side
  panel when nothing is selected).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from graphscope.ir import json_safe
from graphscope.rendering.text import format_shape

if TYPE_CHECKING:
    from graphscope.ir import Graph

__all__ = ["dumps", "to_collection"]


def to_collection(graph: Graph) -> dict[str, Any]:
    """The graph and all its subgraphs as one Model Explorer ``GraphCollection`` (a JSON-ready dict)."""
    scopes = list(_walk(graph, [graph], [""]))
    root_id = graph.name or "graph"
    while any(paths[-1] == root_id for _, paths in scopes):  # a subgraph path equal to the name
        root_id += "_"
    ids = {paths[-1]: (paths[-1] or root_id) for _, paths in scopes}
    return {"label": graph.name, "graphs": [_graph(chain, paths, ids) for chain, paths in scopes]}


def dumps(graph: Graph) -> str:
    """The collection as JSON text (deterministic: the same graph gives the same text)."""
    text = json.dumps(to_collection(graph), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text + "\n"


def _walk(graph: Graph, chain: list[Graph], paths: list[str]) -> Iterator[tuple[list[Graph], list[str]]]:
    """Every graph, depth first, with the graphs enclosing it and their paths (root: ``""``)."""
    yield chain, paths
    for name in sorted(graph.subgraphs):
        sub = graph.subgraphs[name]
        path = f"{paths[-1]}/{name}" if paths[-1] else name
        yield from _walk(sub, [*chain, sub], [*paths, path])


def _resolve(chain: list[Graph], chain_paths: list[str], name: str) -> str | None:
    """The path of body ``name`` as seen from the innermost graph of ``chain`` (IR rule: it
    resolves in the graph that runs it or in any enclosing graph)."""
    for graph, path in zip(reversed(chain), reversed(chain_paths)):
        if name in graph.subgraphs:
            return f"{path}/{name}" if path else name
    return None


def _graph(chain: list[Graph], chain_paths: list[str], ids: dict[str, str]) -> dict[str, Any]:
    graph, path = chain[-1], chain_paths[-1]
    incoming: dict[str, list[dict[str, str]]] = {n: [] for n in graph.nx}
    controls: dict[str, list[dict[str, Any]]] = {n: [] for n in graph.nx}
    for e in graph.edges():
        if e.control:
            input_id = f"control{len(controls[e.dst])}"
            controls[e.dst].append(
                {"id": input_id, "attrs": [_kv("control", "ordering only: no data flows on this edge")]}
            )
        else:
            input_id = str(e.dst_port)
        incoming[e.dst].append(
            {"sourceNodeId": e.src, "sourceNodeOutputId": str(e.src_port), "targetNodeInputId": input_id}
        )
    nodes = []
    for n in graph.nodes():
        node: dict[str, Any] = {
            "id": n["id"],
            "label": _label(n),
            "namespace": "/".join(part.replace("/", "∕") or "_" for part in n["scope"]),
        }
        subgraph_ids = [p for p in (_resolve(chain, chain_paths, s) for s in n["subgraphs"]) if p is not None]
        if subgraph_ids:
            node["subgraphIds"] = [ids[p] for p in subgraph_ids]
        node["attrs"] = _node_attrs(n)
        if incoming[n["id"]]:
            node["incomingEdges"] = incoming[n["id"]]
        outputs = [_output_metadata(i, o) for i, o in enumerate(n["outputs"])]
        if outputs:
            node["outputsMetadata"] = outputs
        if controls[n["id"]]:
            node["inputsMetadata"] = controls[n["id"]]
        nodes.append(node)
    about = {
        "framework": graph.framework or "?",
        "capture": graph.capture or "?",
        "framework version": graph.framework_version or "?",
        "inputs": ", ".join(graph.inputs),
        "outputs": ", ".join(graph.outputs),
    }
    if not path:
        about["exported by"] = "graphscope"
    else:
        about["subgraph"] = path
    for i, note in enumerate(graph.notes):
        about[f"note {i + 1}"] = note
    return {"id": ids[path], "nodes": nodes, "groupNodeAttributes": {"": about}}


def _kv(key: str, value: Any) -> dict[str, str]:
    """A side-panel row; values that are not text as JSON, NaN and infinities as words."""
    safe = json_safe(value)
    text = safe if isinstance(safe, str) else json.dumps(safe, ensure_ascii=False, sort_keys=True)
    return {"key": key, "value": text}


def _label(node: dict[str, Any]) -> str:
    """What Model Explorer writes in the box: the op, short; for a value (input, output,
    weight), its name."""
    if node["kind"] in ("input", "output"):
        return str(node["name"])
    if node["kind"] == "param":
        return str(node["name"]).replace("/", ".").rsplit(".", 1)[-1] or node["id"]
    op = str(node["op"])
    for prefix in ("call_module:", "call_function:", "call_method:"):
        if op.startswith(prefix):
            return op[len(prefix) :]
    if op.startswith("aten.") and op.count(".") >= 2:  # aten.linear.default -> linear
        return op.split(".")[1]
    return op.split("::")[-1].removeprefix("operator.")


def _node_attrs(node: dict[str, Any]) -> list[dict[str, str]]:
    attrs = [_kv("op", node["op"]), _kv("canonical_op", node["canonical_op"]), _kv("kind", node["kind"])]
    if node["name"] != node["id"]:
        attrs.append(_kv("name", node["name"]))
    if node["phase"] != "forward":  # a training step's graph (trace --backward)
        attrs.append(_kv("phase", node["phase"]))
    if node["grad_of"] is not None:
        attrs.append(_kv("grad_of", node["grad_of"]))
    source = node["source"]
    if source:
        line = source.get("line")
        attrs.append(_kv("source", f"{source['file']}:{line}" if line is not None else source["file"]))
    attrs.extend(_kv(key, node["attrs"][key]) for key in sorted(node["attrs"]))
    return attrs


def _output_metadata(index: int, output: dict[str, Any]) -> dict[str, Any]:
    dtype, shape = output.get("dtype"), output.get("shape")
    attrs = [_kv("tensor_shape", f"{dtype or '?'}{format_shape(shape) if shape is not None else ''}")]
    # A stepped graph carries value statistics per output: show them with the shape.
    stats = output.get("stats")
    if isinstance(stats, dict):
        attrs.extend(_kv(key, stats[key]) for key in sorted(stats))
    attrs.extend(_kv(key, output[key]) for key in sorted(output) if key not in ("dtype", "shape", "stats"))
    return {"id": str(index), "attrs": attrs}
