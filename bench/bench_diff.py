"""Diff matching quality on random edits, and diff time from 1k to 100k nodes.

    .venv/bin/python bench/bench_diff.py [--seeds 5]

Quality: captured graphs (the golden transformer block, GRU and OR gate, ResNet-50 by
torch.export and a 12-layer TransformerEncoder captured eagerly) are copied with random edits —
every id renamed, k nodes inserted into edges, k op nodes deleted (their first input that is
not a weight joined to their outputs, as removing a layer would), the node order shuffled
(independent branches reordered) — and matched back. Precision: matched pairs
that are right / pairs matched; recall: right pairs / nodes that survived the edit.

Scale: a transformer block's graph tiled into a deep chain (each copy in its own scope) of
1k to 100k nodes, diffed against a copy with 1% of its nodes inserted and 1% deleted.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import networkx as nx

from graphscope import diffing as diff
from graphscope import ir


def edited(graph: ir.Graph, rng: random.Random, k: int) -> tuple[ir.Graph, dict[str, str]]:
    """A renamed, edited, shuffled copy of ``graph`` and the true mapping of surviving nodes."""
    g = ir.loads(ir.dumps(graph))
    truth = {n: n for n in g.nx}
    ops = [n for n in g.nx if g.node(n)["kind"] == "op"]
    for victim in rng.sample(ops, min(k, len(ops) // 4)):  # deletions
        preds = sorted(
            ((d["dst_port"], u) for u, _, d in g.nx.in_edges(victim, data=True) if not d["control"]),
            key=lambda pu: pu[0],
        )
        succs = [(v, d) for _, v, d in g.nx.out_edges(victim, data=True)]
        if not preds:
            continue
        # Removing a layer joins its data input to its users: its first input that is not a
        # weight (a conv's activation, not its kernel); an op fed by weights only, the first.
        data = [u for _, u in preds if g.node(u)["kind"] not in ("param", "const")]
        src = data[0] if data else preds[0][1]
        for v, d in succs:
            g.nx.add_edge(src, v, src_port=0, dst_port=d["dst_port"], control=d["control"])
        g.nx.remove_node(victim)
        del truth[victim]
        g.outputs = [o for o in g.outputs if o != victim]
    edges = [(u, v, key) for u, v, key, d in g.nx.edges(keys=True, data=True) if not d["control"]]
    for i, (u, v, key) in enumerate(rng.sample(edges, min(k, len(edges)))):  # insertions
        if not g.nx.has_edge(u, v, key):
            continue
        data = g.nx.edges[u, v, key]
        g.nx.remove_edge(u, v, key)
        new = f"inserted_{i}"
        g.add_node(new, op=rng.choice(["aten.gelu.default", "aten.dropout.default", "aten.mul.Tensor"]),
                   scope=g.node(v)["scope"])  # fmt: skip
        g.add_edge(u, new, src_port=data["src_port"])
        g.add_edge(new, v, dst_port=data["dst_port"])
    # rename every node and shuffle the node order
    names = list(g.nx)
    rng.shuffle(names)
    mapping = {n: f"v{i}" for i, n in enumerate(names)}
    shuffled = nx.MultiDiGraph()
    for n in names:
        shuffled.add_node(mapping[n], **{**g.nx.nodes[n], "id": mapping[n], "name": mapping[n]})
    for u, v, d in g.nx.edges(data=True):
        shuffled.add_edge(mapping[u], mapping[v], **d)
    g.nx = shuffled
    g.inputs = [mapping[i] for i in g.inputs]
    g.outputs = [mapping[o] for o in g.outputs]
    return g, {a: mapping[b] for a, b in truth.items()}


def quality(graph: ir.Graph, rng: random.Random, k: int) -> tuple[float, float]:
    b, truth = edited(graph, rng, k)
    d = diff.diff(graph, b)
    right = sum(1 for x, y in d.matched if truth.get(x) == y)
    return right / max(len(d.matched), 1), right / max(len(truth), 1)


def tiled(block: ir.Graph, copies: int) -> ir.Graph:
    """``copies`` of ``block`` chained output to input, copy i in scope ``layers.i``."""
    g = ir.Graph("tiled", framework="torch", capture="export")
    g.add_node("x", op="placeholder", kind="input")
    prev = "x"
    body = [n for n in block.nodes() if n["kind"] not in ("input", "output")]
    for i in range(copies):
        for n in body:
            g.add_node(f"{n['id']}__{i}", op=n["op"], kind=n["kind"], scope=["layers", str(i), *n["scope"]],
                       outputs=n["outputs"])  # fmt: skip
        for e in block.edges():
            src, dst = e.src, e.dst
            if block.node(dst)["kind"] == "output":
                continue
            s = prev if block.node(src)["kind"] == "input" else f"{src}__{i}"
            g.add_edge(s, f"{dst}__{i}", src_port=e.src_port, dst_port=e.dst_port)
        last = [f"{o}__{i}" for out in block.outputs for o in block.predecessors(out)]
        prev = last[0]
    g.add_node("output", op="output", kind="output")
    g.add_edge(prev, "output")
    g.inputs, g.outputs = ["x"], ["output"]
    return g


def captured_models() -> dict[str, ir.Graph]:
    graphs = {
        name: ir.load(ROOT / "tests" / "golden" / "torch" / f"{name}.export.json")
        for name in ("transformer_block", "gru", "or_gate")
    }
    try:
        import warnings

        import torch

        from graphscope import tracers
        from tests import torch_models

        warnings.simplefilter("ignore")
        torch.set_num_threads(2)
        model, inputs = torch_models.resnet50()
        graphs["resnet50"] = tracers.capture(model, inputs, fw="torch", method="export", name="resnet50")
        model, inputs = torch_models.transformer_encoder(layers=12)
        graphs["transformer_encoder_12"] = tracers.capture(
            model, inputs, fw="torch", method="eager", name="enc"
        )
    except ImportError:
        pass
    return graphs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()

    print("| graph | nodes | edits (k inserted, k deleted) | precision | recall |")
    print("|---|---:|---:|---:|---:|")
    for name, graph in captured_models().items():
        for k in sorted({1, max(1, len(graph) // 50), max(1, len(graph) // 20)}):
            scores = [quality(graph, random.Random(seed), k) for seed in range(args.seeds)]
            p = statistics.mean(s[0] for s in scores)
            r = statistics.mean(s[1] for s in scores)
            print(f"| {name} | {len(graph)} | {k} | {p:.3f} | {r:.3f} |", flush=True)

    print()
    print("| nodes (A / B) | diff time (s) | per 1k nodes (ms) | precision | recall |")
    print("|---|---:|---:|---:|---:|")
    block = ir.load(ROOT / "tests" / "golden" / "torch" / "transformer_block.export.json")
    per_copy = len(block) - 2
    for target in (1_000, 5_000, 20_000, 50_000, 100_000):
        a = tiled(block, max(1, target // per_copy))
        b, truth = edited(a, random.Random(0), len(a) // 100)
        start = time.perf_counter()
        d = diff.diff(a, b)
        seconds = time.perf_counter() - start
        right = sum(1 for x, y in d.matched if truth.get(x) == y)
        print(
            f"| {len(a)} / {len(b)} | {seconds:.2f} | {1000 * seconds / len(a) * 1000:.1f} "
            f"| {right / len(d.matched):.3f} | {right / len(truth):.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
