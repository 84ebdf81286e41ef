"""Capture + normalize time of graphscope's PyTorch tracers against the bare framework call.

    .venv/bin/python bench/bench_capture_torch.py [--repeat 3]

Bare calls: fx = symbolic_trace + one ShapeProp run (what graphscope's fx capture does before
normalizing), export = torch.export.export, jit-trace = torch.jit.trace(...).inlined_graph,
jit-script = torch.jit.script(...).inlined_graph (the graph with submodules inlined, which is
what anyone reading a TorchScript graph node by node needs), dynamo = torch._dynamo.explain. Each figure is the median of
--repeat runs, after one warm-up run; the bare call and graphscope's capture run alternately.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
import torch._dynamo
import torch.fx
from _timing import timed, timed_pair
from torch.fx.passes.shape_prop import ShapeProp

from graphscope import tracers
from tests import torch_models


def bare(method: str, model: Any, inputs: tuple[Any, ...]) -> Any:
    if method == "fx":
        gm = torch.fx.symbolic_trace(model)
        with torch.no_grad():
            ShapeProp(gm).propagate(*inputs)
        return gm
    if method == "export":
        return torch.export.export(model, inputs)
    if method == "jit-trace":
        return torch.jit.trace(model, inputs, check_trace=False).inlined_graph
    if method == "jit-script":
        return torch.jit.script(model).inlined_graph
    if method == "dynamo":
        torch._dynamo.reset()
        out = torch._dynamo.explain(model)(*inputs)
        torch._dynamo.reset()
        return out
    raise ValueError(method)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--methods", default="fx,export,jit-trace,jit-script,dynamo")
    parser.add_argument("--models", default="resnet50,transformer")
    parser.add_argument("--floor", action="store_true", help="only the jit-script floor, transformer")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(2)
    builders = {
        "resnet50": ("ResNet-50 (1x3x224x224)", torch_models.resnet50),
        "transformer": ("TransformerEncoder 12L (2x16x256)", torch_models.transformer_encoder),
    }
    if args.floor:
        floor(torch_models.transformer_encoder()[0])
        return
    models = {builders[k][0]: builders[k][1]() for k in args.models.split(",")}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeat}")
    print("| model | method | bare call (s) | graphscope (s) | ratio | IR nodes (with subgraphs) |")
    print("|---|---|---:|---:|---:|---:|")
    for label, (model, inputs) in models.items():
        for method in args.methods.split(","):
            try:
                bare(method, model, inputs)
            except Exception as exc:
                print(f"| {label} | {method} | cannot capture: {type(exc).__name__} | - | - | - |")
                continue
            graph = tracers.capture(model, inputs, fw="torch", method=method, name="m")
            t_bare, t_ours = timed_pair(
                lambda: bare(method, model, inputs),
                lambda: tracers.capture(model, inputs, fw="torch", method=method, name="m"),
                args.repeat,
            )
            nodes = len(graph) + sum(len(sub) for _, sub in graph.walk_subgraphs())
            print(
                f"| {label} | {method} | {t_bare:.3f} | {t_ours:.3f} | {t_ours / t_bare:.2f}x | {nodes:,} |",
                flush=True,
            )


def floor(model: Any) -> None:
    """What converting a scripted model costs at the least, in Python, against the bare call:
    printing the inlined graph and matching one regular expression per line (reading nothing
    else), and inserting as many nodes and edges as graphscope's IR has into a bare networkx
    MultiDiGraph's tables with the IR's ten node fields and three edge fields, the collector paused
    as graphscope pauses it, then collecting the young objects that made (a debt the first
    collection after the pause pays)."""
    import gc
    import re

    import networkx as nx

    t_bare = timed(lambda: torch.jit.script(model).inlined_graph, 5)
    graph = torch.jit.script(model).inlined_graph
    line = re.compile(r"^ *(?:(%.*?) )?= ([\w:]+)(.*)$")

    def read() -> int:
        return sum(1 for text in str(graph).splitlines() if line.match(text))

    ir_graph = tracers.capture(model, None, fw="torch", method="jit-script", name="m")
    n_nodes = len(ir_graph) + sum(len(g) for _, g in ir_graph.walk_subgraphs())
    n_edges = ir_graph.number_of_edges() + sum(g.number_of_edges() for _, g in ir_graph.walk_subgraphs())
    del ir_graph

    def insert() -> Any:
        # Straight into networkx's tables, as graphscope's IR writes them (its add_node and
        # add_edge cost twice as much).
        g = nx.MultiDiGraph()
        nodes, succ, pred = g._node, g._succ, g._pred
        gc.disable()
        for i in range(n_nodes):
            nodes[i] = {
                "id": i,
                "name": i,
                "op": "",
                "canonical_op": "",
                "kind": "op",
                "scope": [],
                "outputs": [{"shape": None, "dtype": None}],
                "attrs": {},
                "source": None,
                "subgraphs": [],
            }
            succ[i], pred[i] = {}, {}
        for i in range(n_edges):
            u, v = i % n_nodes, (i * 7) % n_nodes
            keys = succ[u].setdefault(v, {})
            pred[v][u] = keys
            keys[len(keys)] = {"src_port": 0, "dst_port": 0, "control": False}
        gc.enable()
        gc.collect(0)
        return g

    t_read, t_insert = timed(read, 5), timed(insert, 5)
    print(
        f"floor for the scripted model: bare call {t_bare:.3f} s; printing and matching its "
        f"{read():,} node lines {t_read:.3f} s; inserting {n_nodes:,} nodes and {n_edges:,} edges "
        f"into networkx {t_insert:.3f} s; floor {(t_bare + t_read + t_insert) / t_bare:.2f}x the bare call"
    )


if __name__ == "__main__":
    main()
