"""The "where trap": `where` hides a NaN from the forward pass, not from its gradient.

A "safe" square root, `where(x > 0, sqrt(x), 0)`, computes sqrt everywhere and throws away the
NaN of sqrt(-1): the forward pass is finite, and `graphscope step` says the NaN was dropped on
the way. But `SqrtBackward0` divides by the result it saved, NaN included, and `where`'s zero
gradient times that is still NaN: `graphscope step --train` names the forward `sqrt`, and says
that backward reads it.

    graphscope step examples/where_grad_torch.py --fw torch
    graphscope step examples/where_grad_torch.py --fw torch --train
"""

import torch
from torch import nn


class SafeSqrt(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([4.0, -1.0, 9.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        root = torch.sqrt(self.scale)  # NaN at -1, dropped below; its gradient is not
        safe = torch.where(self.scale > 0, root, torch.zeros_like(root))
        return (safe * x).sum()


model = SafeSqrt()
example_inputs = (torch.ones(3),)
