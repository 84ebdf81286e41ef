"""Time to SVG: graphscope against torchview and torch.fx's FxGraphDrawer, and synthetic sizes.

    .venv/bin/pip install -e ".[bench]"    # torchview, pydot
    .venv/bin/python bench/bench_render.py

Each peer is timed end to end, from the nn.Module to SVG text, the way its documentation
shows: torchview's draw_graph(...).visual_graph.pipe("svg"); FxGraphDrawer over
symbolic_trace (ResNet-50) or torch.export's graph module (the transformer, which fx cannot
trace) with .get_dot_graph().create_svg(); graphscope's capture (export, fx, or eager: the ATen
ops one run executed, what torchview records too) + render. All three
lay out with the same Graphviz `dot`. Synthetic graphs are NN-shaped (residual blocks in
stages, scoped) and go IR -> SVG.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from _timing import timed

from graphscope import ir, tracers
from graphscope.rendering import dot, svg
from tests import torch_models


def graphscope_svg(model: Any, inputs: tuple[Any, ...], out: Path, method: str) -> None:
    g = tracers.capture(model, inputs, fw="torch", method=method, name="m")
    svg.render(g, out, quiet=True)


def torchview_svg(model: Any, inputs: tuple[Any, ...]) -> None:
    from torchview import draw_graph

    graph = draw_graph(model, input_data=list(inputs), expand_nested=True, depth=10)
    graph.visual_graph.pipe(format="svg")


def fx_drawer_svg(model: Any, inputs: tuple[Any, ...], use_export: bool, shapes: bool = False) -> None:
    """FxGraphDrawer as documented; ``shapes``: after fx's ShapeProp, so that its boxes carry
    the shapes graphscope's do (an export graph module has them already)."""
    from torch.fx.passes.graph_drawer import FxGraphDrawer
    from torch.fx.passes.shape_prop import ShapeProp

    gm = torch.export.export(model, inputs).graph_module if use_export else torch.fx.symbolic_trace(model)
    if shapes and not use_export:
        with torch.no_grad():
            ShapeProp(gm).propagate(*inputs)
    FxGraphDrawer(gm, "m").get_dot_graph().create_svg()


def synthetic(n_nodes: int) -> ir.Graph:
    """Residual blocks of 8 ops (conv, bn, relu, conv, bn, add, relu, + a param), 16 blocks a stage."""
    g = ir.Graph(f"synthetic{n_nodes}", framework="torch", capture="export")
    g.add_node("x", op="placeholder", kind="input", outputs=[{"shape": [1, 64, 56, 56], "dtype": "float32"}])
    prev, i = "x", 0
    out = [{"shape": [1, 64, 56, 56], "dtype": "float32"}]
    while len(g) < n_nodes - 1:
        stage, block = i // 16, i % 16
        scope = [f"stage{stage}", str(block)]
        ids = [f"b{i}_{k}" for k in range(7)]
        for k, (node_id, op) in enumerate(
            zip(ids, ["conv2d", "batch_norm", "relu", "conv2d", "batch_norm", "add", "relu"])
        ):
            g.add_node(node_id, op=f"aten.{op}.default", scope=[*scope, f"op{k}"], outputs=out)
        w = f"b{i}_w"
        g.add_node(
            w,
            op="placeholder",
            kind="param",
            scope=scope,
            outputs=[{"shape": [64, 64, 3, 3], "dtype": "float32"}],
        )
        g.add_edge(prev, ids[0])
        for a, b in itertools.pairwise(ids):
            g.add_edge(a, b)
        g.add_edge(w, ids[0], dst_port=1)
        g.add_edge(prev, ids[5], dst_port=1)  # the residual
        prev, i = ids[-1], i + 1
    g.add_node("out", op="output", kind="output", outputs=out)
    g.add_edge(prev, "out")
    g.inputs, g.outputs = ["x"], ["out"]
    return g


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(2)
    tmp = Path(tempfile.mkdtemp())
    print(f"torch {torch.__version__}; Graphviz {svg.find_dot()}; median of {args.repeat}\n")
    print(
        "| model | graphscope, export (s) | graphscope, fx (s) | graphscope, eager (s) "
        "| graphscope render only (s) | torchview (s) | FxGraphDrawer (s) | FxGraphDrawer + shapes (s) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    models = {
        "ResNet-50": (torch_models.resnet50(), False),
        "TransformerEncoder 12L": (torch_models.transformer_encoder(), True),
    }
    for label, ((model, inputs), use_export) in models.items():
        row = [label]
        saved = tracers.capture(model, inputs, fw="torch", method="export", name="m")
        for fn in (
            lambda: graphscope_svg(model, inputs, tmp / "g.svg", "export"),
            lambda: graphscope_svg(model, inputs, tmp / "g.svg", "fx"),
            lambda: graphscope_svg(model, inputs, tmp / "g.svg", "eager"),
            lambda: svg.render(saved, tmp / "r.svg", quiet=True),
            lambda: torchview_svg(model, inputs),
            lambda: fx_drawer_svg(model, inputs, use_export),
            lambda: fx_drawer_svg(model, inputs, use_export, shapes=True),
        ):
            try:
                fn()  # warm-up
                row.append(f"{timed(fn, args.repeat, warm_up=False):.2f}")
            except Exception as exc:
                row.append(f"fails: {type(exc).__name__}")
        print("| " + " | ".join(row) + " |", flush=True)

    print("\n| synthetic graph | nodes drawn | IR -> SVG (s) |")
    print("|---|---:|---:|")
    for n in (1_000, 10_000, 100_000):
        g = synthetic(n)
        layout = dot.to_dot(g)
        t = timed(lambda: svg.render(g, tmp / "s.svg", quiet=True), 1, warm_up=False)
        print(f"| {n:,} nodes | {layout.drawn_nodes} | {t:.2f} |", flush=True)


if __name__ == "__main__":
    main()
