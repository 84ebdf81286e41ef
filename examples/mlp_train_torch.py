"""A small MLP trained with mean squared error: the forward graph, the loss and the backward
graph autograd builds for them.

`example_targets` are what the loss compares the output with; `loss_fn(output, *targets)`
returns the scalar that `loss.backward()` would start from. The backward graph has one node per
autograd function (`AddmmBackward0`, `ReluBackward0`, ...), each linked to the forward op it
differentiates, and one `AccumulateGrad` per parameter.

    graphscope trace examples/mlp_train_torch.py --fw torch --backward -o mlp_train.json

`train_step` returns the same four things as an entry point:

    graphscope trace examples/mlp_train_torch.py --fw torch --backward --entry train_step
"""

import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(3, 8)
        self.out = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(x)))


def loss_fn(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return nn.functional.mse_loss(output, target)


torch.manual_seed(0)
model = MLP()
example_inputs = (torch.randn(4, 3),)
example_targets = (torch.randn(4, 1),)


def train_step() -> tuple[nn.Module, tuple[torch.Tensor, ...], tuple[torch.Tensor, ...], object]:
    return model, example_inputs, example_targets, loss_fn
