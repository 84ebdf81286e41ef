"""A small residual MLP, version 1. `edit_v2_torch.py` is the same model after three edits.

graphscope diff examples/edit_v1_torch.py examples/edit_v2_torch.py --fw torch
"""

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act(self.fc(x))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(16, 32)
        self.block1 = Block(32)
        self.block2 = Block(32)
        self.classifier = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.embed(x))
        h = self.block2(self.block1(h))
        return self.classifier(h)


torch.manual_seed(0)
model = Net().eval()
example_inputs = (torch.randn(8, 16),)
