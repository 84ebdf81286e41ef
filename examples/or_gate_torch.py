"""The OR gate as a 3-layer sigmoid MLP in PyTorch: the classic first network.

graphscope trace examples/or_gate_torch.py --fw torch
"""

import torch
from torch import nn


class OrGate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden1 = nn.Linear(2, 4)
        self.hidden2 = nn.Linear(4, 4)
        self.out = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.sigmoid(self.hidden1(x))
        h = torch.sigmoid(self.hidden2(h))
        return torch.sigmoid(self.out(h))


torch.manual_seed(0)
model = OrGate()
# The four rows of the truth table.
example_inputs = (torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]),)
