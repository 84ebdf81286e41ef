"""`edit_v1_torch.py` after three edits: block2's activation swapped from ReLU to GELU, a
LayerNorm added before the output layer, and that layer renamed from `classifier` to `head`.

    graphscope diff examples/edit_v1_torch.py examples/edit_v2_torch.py --fw torch
"""

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, width: int, act: nn.Module) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act(self.fc(x))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(16, 32)
        self.block1 = Block(32, nn.ReLU())
        self.block2 = Block(32, nn.GELU())  # edit 1: was ReLU
        self.norm = nn.LayerNorm(32)  # edit 2: added
        self.head = nn.Linear(32, 4)  # edit 3: was `classifier`

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.embed(x))
        h = self.block2(self.block1(h))
        return self.head(self.norm(h))


torch.manual_seed(0)
model = Net().eval()
example_inputs = (torch.randn(8, 16),)
