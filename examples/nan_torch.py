"""A NaN born deep inside a model, and carried to its output.

`features` goes through two Linear layers and then a log, as if to compress its range. The
second layer has no activation, so some of its outputs are negative for this input, and the
log of a negative number is NaN. LayerNorm and the head then spread the NaN everywhere: the
output is all NaN, but the NaN was born at the log.

    graphscope step examples/nan_torch.py --fw torch --until nonfinite
"""

import torch
from torch import nn


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x))
        h = self.fc2(h)  # no activation: some values are negative
        return torch.log(h)  # the NaN is born here


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = Encoder()
        self.norm = nn.LayerNorm(16)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.head(self.norm(self.features(x))), dim=-1)


torch.manual_seed(0)
model = Model().eval()
example_inputs = (torch.randn(4, 8),)
