"""The classic "sqrt at zero": the forward pass is finite, its gradient is not.

d/dx sqrt(x) = 1 / (2 sqrt(x)), which is +Inf at x = 0. Here `offset + x` is 0 in its first
element, so the loss (a sum of square roots, 0 + 1 + 2 = 3) is fine, but the gradient that
`SqrtBackward0` sends back to `offset` is Inf in that element. The model's output is already a
scalar, so it needs no `loss_fn` and no `example_targets`.

    graphscope trace examples/sqrt_grad_torch.py --fw torch --backward
"""

import torch
from torch import nn


class SqrtModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.offset = nn.Parameter(torch.tensor([0.0, 1.0, 4.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(self.offset + x).sum()  # finite; its gradient at offset[0] is Inf


model = SqrtModel()
example_inputs = (torch.zeros(3),)
