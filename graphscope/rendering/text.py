"""The terminal summary of a graph: the facts `graphscope info` prints, as data and as rich text."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from graphscope.ir import Graph

__all__ = ["format_outputs", "format_shape", "info_document", "print_summary", "summary_renderable"]


def format_shape(shape: list[Any] | None) -> str:
    """``[8, 64, 56, 56]`` -> ``"[8,64,56,56]"``; unknown dims print as ``?``.

    >>> format_shape([8, "s0", None])
    '[8,s0,?]'
    >>> format_shape(None)
    '?'
    """
    if shape is None:
        return "?"
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def format_outputs(outputs: list[dict[str, Any]]) -> str:
    """All outputs of a node as ``float32[2,3]``, comma-joined."""
    return ", ".join(
        "?" if o["dtype"] is None and o["shape"] is None else f"{o['dtype'] or '?'}{format_shape(o['shape'])}"
        for o in outputs
    )


def _port_list(graph: Graph, ids: list[str]) -> list[dict[str, Any]]:
    rows = []
    for node_id in ids:
        node = graph.node(node_id)
        rows.append({"id": node_id, "name": node["name"], "outputs": node["outputs"]})
    return rows


def info_document(graph: Graph) -> dict[str, Any]:
    """What `graphscope info --json` prints: counts, op histogram, ports, metadata, notes."""
    # One pass over the nodes: `info` answers on a million-node file too.
    ops: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    phases: Counter[str] = Counter()
    canonical: dict[str, str] = {}
    with_shape = no_outputs = 0
    for n in graph.nodes():
        op = n["op"]
        ops[op] += 1
        kinds[n["kind"]] += 1
        phases[n["phase"]] += 1
        canonical[op] = n["canonical_op"]
        if n["kind"] != "op":
            continue
        if not n["outputs"]:  # an assertion, a print: no value to have a shape
            no_outputs += 1
        elif all(o["shape"] is not None and o["dtype"] for o in n["outputs"]):
            with_shape += 1
    from graphscope import folding

    folds = folding.find_folds(graph)
    nested = list(graph.walk_subgraphs())
    # The ops inside bodies and called graphs (a Dynamo capture's top level is only calls).
    sub_ops: Counter[str] = Counter()
    for _, sub in nested:
        for n in sub.nodes():
            if n["kind"] in ("op", "control"):
                sub_ops[n["op"]] += 1
                canonical.setdefault(n["op"], n["canonical_op"])
    control = graph.number_of_control_edges()
    return {
        "name": graph.name,
        "framework": graph.framework,
        "framework_version": graph.framework_version,
        "capture": graph.capture,
        "nodes": len(graph),
        "edges": graph.number_of_edges(),
        "control_edges": control,
        "back_edges": len(graph.back_edges()),
        "kinds": dict(sorted(kinds.items())),
        "phases": {p: phases[p] for p in _PHASE_ORDER if phases[p]},
        "ops": dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        "subgraph_ops": dict(sorted(sub_ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        "canonical_ops": {op: canonical[op] for op in sorted(canonical)},
        "op_nodes_with_shape": with_shape,
        "op_nodes_without_outputs": no_outputs,
        "subgraphs": len(nested),
        "subgraph_names": [path for path, _ in nested],
        "subgraph_nodes": sum(len(sub) for _, sub in nested),
        "repeated_blocks": [
            {
                "scope": ".".join(f.parent),
                "count": f.count,
                "first": ".".join(f.first),
                "last": ".".join((*f.parent, f.members[-1])),
                "nodes_each": f.nodes,
                "differing": [{"scope": ".".join((*f.parent, m)), "how": how} for m, how in f.differing],
            }
            for f in folds
        ],
        "inputs": _port_list(graph, graph.inputs),
        "outputs": _port_list(graph, graph.outputs),
        "signature": graph.signature,
        "notes": list(graph.notes),
    }


_PHASE_ORDER = ("forward", "backward", "optimizer")  # ir.Phase, in the order a training step runs


def summary_renderable(graph: Graph, *, top_ops: int = 15, top_ports: int = 20) -> RenderableType:
    """The summary as a rich renderable (tables and a notes list)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    doc = info_document(graph)
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    framework, version = doc["framework"] or "?", doc["framework_version"]
    if version and version.split()[0] != framework:  # ONNX's says "onnx 1.23.2; opset 17" itself
        framework = f"{framework} {version}"
    elif version:
        framework = version
    head.add_row("graph", Text(doc["name"]))
    head.add_row("captured", Text(f"{framework} · {doc['capture'] or '?'}"))
    edges = f"{doc['edges']} edges"
    extra = [
        f"{doc['control_edges']} control" if doc["control_edges"] else "",
        f"{doc['back_edges']} back" if doc["back_edges"] else "",
    ]
    extra = [e for e in extra if e]
    if extra:
        edges += f" ({', '.join(extra)})"
    head.add_row("size", Text(f"{doc['nodes']} nodes, {edges}"))
    head.add_row("kinds", Text(", ".join(f"{k} {v}" for k, v in doc["kinds"].items()) or "-"))
    if set(doc["phases"]) - {"forward"}:  # an inference graph is all forward: no row for it
        head.add_row("phases", Text(", ".join(f"{k} {v}" for k, v in doc["phases"].items())))
    n_ops = doc["kinds"].get("op", 0) - doc["op_nodes_without_outputs"]
    if n_ops:
        shapes = f"{doc['op_nodes_with_shape']}/{n_ops} op nodes have a complete shape and dtype"
        if doc["op_nodes_without_outputs"]:
            shapes += f" ({doc['op_nodes_without_outputs']} more have no outputs)"
        head.add_row("shapes", Text(shapes))
    for block in doc["repeated_blocks"]:
        text = (
            f"{block['count']} × {block['scope'] or '(top level)'}.N (identical, {block['nodes_each']} nodes each): "
            f"{block['first']} … {block['last']}"
        )
        for other in block["differing"]:
            text += f"; {other['scope']} differs: {other['how']}"
        head.add_row("repeated", Text(text))
    if doc["subgraphs"]:
        head.add_row(
            "subgraphs",
            Text(
                f"{doc['subgraphs']} ({doc['subgraph_nodes']} nodes): "
                + ", ".join(doc["subgraph_names"][:8])
                + (" ..." if doc["subgraphs"] > 8 else "")
            ),
        )

    ports = Table(title="inputs and outputs", title_justify="left", expand=False, show_edge=False)
    ports.add_column("", style="dim")
    ports.add_column("node")
    ports.add_column("value")
    for role in ("inputs", "outputs"):
        rows = doc[role]
        for row in rows[:top_ports]:
            ports.add_row(role[:-1], Text(row["id"]), Text(format_outputs(row["outputs"]) or "-"))
        if len(rows) > top_ports:  # a file with 100,000 inputs took 42 s to print them all
            ports.add_row(
                role[:-1],
                Text(f"... {len(rows) - top_ports} more {role} (--json lists all)", style="dim"),
                "",
            )

    ops = Table(title="ops", title_justify="left", show_edge=False)
    ops.add_column("op")
    ops.add_column("canonical", style="cyan")
    top, inner = doc["ops"], doc["subgraph_ops"]
    items: list[tuple[str, tuple[int, ...]]]
    if inner:  # a column for the ops inside subgraphs, and the rows by their total
        ops.add_column("top level", justify="right")
        ops.add_column("in subgraphs", justify="right")
        names = sorted(top.keys() | inner.keys(), key=lambda op: (-top.get(op, 0) - inner.get(op, 0), op))
        items = [(op, (top.get(op, 0), inner.get(op, 0))) for op in names]
    else:
        ops.add_column("count", justify="right")
        items = [(op, (count,)) for op, count in top.items()]
    for op, counts in items[:top_ops]:
        ops.add_row(Text(op), Text(doc["canonical_ops"][op]), *(str(c) if c else "-" for c in counts))
    if len(items) > top_ops:
        rest = [str(sum(c[i] for _, c in items[top_ops:])) for i in range(len(items[0][1]))]
        ops.add_row(Text(f"... {len(items) - top_ops} more ops", style="dim"), "", *rest)

    parts: list[RenderableType] = [head, Text(""), ports, Text(""), ops]
    if doc["notes"]:
        parts.append(Text(""))
        parts.append(Text("notes", style="bold"))
        notes = Table.grid(padding=(0, 1))  # a long note wraps under its text, not the bullet
        notes.add_column(no_wrap=True)
        notes.add_column(style="yellow")
        for note in doc["notes"]:
            notes.add_row(Text("  •", style="yellow"), Text(note))
        parts.append(notes)
    return Group(*parts)


def print_summary(graph: Graph, console: Console | None = None) -> None:
    """Print the summary to ``console`` (stdout by default)."""
    from rich.console import Console

    (console or Console()).print(summary_renderable(graph))
