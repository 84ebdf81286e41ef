"""A stack of identical residual blocks, 3 deep (`stack_v1_torch.py` is 3 deep, `stack_v2_torch.py` 6).

`graphscope render` draws the first block once with a ×3 badge; `graphscope diff` of the two
versions says "layers: 3 → 6 identical blocks" instead of listing every added node.
"""

import torch
from torch import nn

DEPTH = 3


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 16)
        self.norm = nn.LayerNorm(16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.fc2(torch.relu(self.fc1(x))))


class Stack(nn.Module):
    def __init__(self, depth: int) -> None:
        super().__init__()
        self.embed = nn.Linear(8, 16)
        self.layers = nn.ModuleList(Block() for _ in range(depth))
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        for layer in self.layers:
            h = layer(h)
        return self.head(h)


torch.manual_seed(0)
model = Stack(DEPTH).eval()
example_inputs = (torch.randn(2, 8),)
