"""Capturing a training step's graph (``trace --backward``) against one plain forward + backward.

    .venv/bin/python bench/bench_backward_torch.py [--repeat 3] [--models resnet50,gpt] [--threads 2] [--cpu-time]

"Plain step" is what training does once: the forward pass, a loss (the output's mean square),
``loss.backward()``, and the gradients cleared again. "graphscope" is
``tracers.capture_backward``: the same forward pass and loss under the eager recorder, the
autograd graph read from ``loss.grad_fn`` (not run), converted to the IR and validated. The two
run alternately after one warm-up each; each figure is the median of --repeat runs.

The issue's figure is wall time with 2 threads on a quiet machine. On a busy one, wall times
say little (the plain step's two threads wait on each other); ``--threads 1 --cpu-time`` times
the process's CPU time instead, single-threaded, which sharing the machine disturbs far less.
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
from _timing import timed_pair

from graphscope import tracers
from tests import torch_models


def loss_fn(output: Any) -> Any:
    return output.float().pow(2).mean()


def plain_step(model: Any, inputs: tuple[Any, ...]) -> None:
    loss_fn(model(*inputs)).backward()
    model.zero_grad(set_to_none=True)


def capture(model: Any, inputs: tuple[Any, ...]) -> Any:
    return tracers.capture_backward(model, inputs, fw="torch", loss_fn=loss_fn, name="m")


def gpt_like() -> tuple[Any, tuple[Any, ...]]:
    """A 12-layer GPT-like decoder stack: causal self-attention blocks (width 256, 8 heads)."""
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(
        d_model=256, nhead=8, dim_feedforward=1024, batch_first=True, norm_first=True
    )
    stack = torch.nn.TransformerEncoder(layer, num_layers=12, enable_nested_tensor=False)

    class GPTLike(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(512, 256)
            self.blocks = stack
            self.head = torch.nn.Linear(256, 512)

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            mask = torch.nn.Transformer.generate_square_subsequent_mask(tokens.shape[1])
            return self.head(self.blocks(self.embed(tokens), mask=mask, is_causal=True))

    return GPTLike(), (torch.randint(0, 512, (2, 32)),)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", default="resnet50,gpt")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cpu-time", action="store_true", help="the process's CPU time, not wall time")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.cpu_time else time.perf_counter
    builders = {
        "resnet50": ("ResNet-50 (1x3x224x224)", lambda: torch_models.resnet50()),
        "gpt": ("GPT-like 12L (2x32 tokens, width 256)", gpt_like),
    }
    what = "CPU time" if args.cpu_time else "wall time"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {what}, median of {args.repeat}")
    print("| model | plain step (s) | graphscope (s) | ratio | forward / backward nodes |")
    print("|---|---:|---:|---:|---:|")
    for key in args.models.split(","):
        label, build = builders[key]
        model, inputs = build()
        model.train()
        graph = capture(model, inputs)
        phases = [n["phase"] for n in graph.nodes()]
        plain, ours = timed_pair(
            lambda: plain_step(model, inputs), lambda: capture(model, inputs), args.repeat, clock=clock
        )
        counts = f"{phases.count('forward'):,} / {phases.count('backward'):,}"
        print(f"| {label} | {plain:.3f} | {ours:.3f} | {ours / plain:.2f}x | {counts} |")


if __name__ == "__main__":
    main()
