"""The backward graph drawn: graphscope against torchviz's ``make_dot``, time to SVG.

    .venv/bin/python bench/bench_backward_torchviz.py [--repeat 3] [--models resnet50,gpt] [--out DIR]

Same models and loss as bench_backward_torch.py (ResNet-50, the 12-layer GPT-like stack; the
output's mean square). "torchviz" is what its README does: the forward pass and the loss, then
``make_dot(loss, params=dict(model.named_parameters()))`` and Graphviz's render to SVG.
"graphscope" is ``trace --fw torch --backward --svg``: ``tracers.capture_backward`` (the
forward pass and loss under the eager recorder, the autograd graph read from ``loss.grad_fn``)
and ``graphscope.render`` with its defaults (a graph too big to read is drawn with its scopes
collapsed, as the CLI draws it; Graphviz is given 30 minutes instead of the CLI's 60 s). Both start from the model and its inputs and end with an SVG
file; they run alternately after one warm-up each, and each figure is the median of --repeat
runs. The last SVG of each is kept in --out (default bench/out/), to be looked at.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
import torchviz  # type: ignore[import-untyped]
from _timing import timed_pair
from bench_backward_torch import gpt_like, loss_fn

import graphscope
from graphscope import tracers
from tests import torch_models


def torchviz_svg(model: Any, inputs: tuple[Any, ...], out: Path) -> Path:
    loss = loss_fn(model(*inputs))
    dot = torchviz.make_dot(loss, params=dict(model.named_parameters()))
    path = Path(dot.render(str(out.with_suffix("")), format="svg", cleanup=True))
    model.zero_grad(set_to_none=True)
    return path


def graphscope_svg(model: Any, inputs: tuple[Any, ...], out: Path) -> Path:
    graph = tracers.capture_backward(model, inputs, fw="torch", loss_fn=loss_fn, name="m")
    # The CLI gives Graphviz 60 s: ResNet-50's backward drawing took longer on a busy machine.
    return graphscope.render(graph, out, quiet=True, timeout=1800)


def boxes(svg: Path) -> int:
    """Drawn boxes: Graphviz writes one <g class="node"> per node."""
    return len(re.findall(r'<g id="[^"]*" class="node"', svg.read_text()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", default="resnet50,gpt")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(2)
    args.out.mkdir(parents=True, exist_ok=True)
    builders = {
        "resnet50": ("ResNet-50 (1x3x224x224)", torch_models.resnet50),
        "gpt": ("GPT-like 12L (2x32 tokens, width 256)", gpt_like),
    }
    print(
        f"torch {torch.__version__}, torchviz {getattr(torchviz, '__version__', '0.0.3')}, "
        f"{torch.get_num_threads()} threads, median of {args.repeat}"
    )
    print("| model | torchviz make_dot + SVG (s) | boxes | graphscope trace --backward + SVG (s) | boxes |")
    print("|---|---:|---:|---:|---:|")
    for key in args.models.split(","):
        label, build = builders[key]
        model, inputs = build()
        model.train()
        theirs_svg = args.out / f"{key}_torchviz.svg"
        ours_svg = args.out / f"{key}_graphscope.svg"
        theirs, ours = timed_pair(
            lambda: torchviz_svg(model, inputs, theirs_svg),
            lambda: graphscope_svg(model, inputs, ours_svg),
            args.repeat,
        )
        print(
            f"| {label} | {theirs:.2f} | {boxes(theirs_svg):,} | {ours:.2f} | {boxes(ours_svg):,} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
