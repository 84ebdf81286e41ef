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
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
import torch._dynamo
import torch.fx
from _timing import timed_pair
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
        import gc

        gc.disable()  # as graphscope's conversion runs
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
    """What converting a scripted model costs at the least, in Python: reading each node of
    the inlined graph through pybind (kind, inputs, outputs, their names and types, the source
    range; the fastest accessors), and inserting that many nodes and edges into a bare
    networkx MultiDiGraph with the IR's ten node fields and three edge fields."""
    import networkx as nx

    scripted = torch.jit.script(model)
    graph = scripted.inlined_graph

    def read(block: Any) -> tuple[int, int]:
        nodes = edges = 0
        for node in block.nodes():
            kind = node.kind()
            outs = [node.outputsAt(i) for i in range(node.outputsSize())]
            ins = [node.inputsAt(i).debugName() for i in range(node.inputsSize())]
            [(v.debugName(), v.type().kind()) for v in outs]
            node.sourceRange()
            nodes, edges = nodes + 1, edges + len(ins)
            if kind in ("prim::If", "prim::Loop"):
                for sub in node.blocks():
                    n, e = read(sub)
                    nodes, edges = nodes + n, edges + e
        return nodes, edges

    start = time.perf_counter()
    ts_nodes, _ = read(graph)
    t_read = time.perf_counter() - start
    ir_graph = tracers.capture(model, None, fw="torch", method="jit-script", name="m")
    n_nodes = len(ir_graph) + sum(len(g) for _, g in ir_graph.walk_subgraphs())
    n_edges = ir_graph.number_of_edges() + sum(g.number_of_edges() for _, g in ir_graph.walk_subgraphs())
    start = time.perf_counter()
    g = nx.MultiDiGraph()
    for i in range(n_nodes):
        g.add_node(
            i,
            id=i,
            name=i,
            op="",
            canonical_op="",
            kind="op",
            scope=[],
            outputs=[],
            attrs={},
            source=None,
            subgraphs=[],
        )
    for i in range(n_edges):
        g.add_edge(i % n_nodes, (i * 7) % n_nodes, src_port=0, dst_port=0, control=False)
    t_insert = time.perf_counter() - start
    print(
        f"floor for the scripted model: reading {ts_nodes:,} TorchScript nodes {t_read:.3f} s, "
        f"inserting {n_nodes:,} nodes and {n_edges:,} edges into networkx {t_insert:.3f} s"
    )


if __name__ == "__main__":
    main()
