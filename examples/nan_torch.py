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


# Two more ways a NaN or an Inf is born, as entry points:
#     graphscope step examples/nan_torch.py --fw torch --entry zero_variance
#     graphscope step examples/nan_torch.py --fw torch --entry exp_overflow


class Standardise(nn.Module):
    """(x - mean) / std by hand, without LayerNorm's epsilon: a constant row gives 0/0 = NaN."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(dim=-1, keepdim=True)
        scaled = centred / centred.std(dim=-1, keepdim=True)  # 0/0 on the constant row
        return self.proj(scaled)


def zero_variance() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0]])  # the second row is constant
    return Standardise().eval(), (x,)


class SoftmaxByHand(nn.Module):
    """exp(x) / sum(exp(x)) without subtracting the max: exp(100) overflows float32 to +Inf."""

    def __init__(self) -> None:
        super().__init__()
        self.logits = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = torch.exp(self.logits(x) * 500.0)  # the Inf is born here
        return e / e.sum(dim=-1, keepdim=True)  # ... and Inf/Inf = NaN after it


def exp_overflow() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    return SoftmaxByHand().eval(), (torch.full((2, 4), 3.0),)
