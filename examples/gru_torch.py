"""A GRU cell stepped over a sequence in Python: the loop length depends on the input.

jit-trace and export unroll the loop for the example's length; jit-script keeps it as a
prim::Loop; fx cannot iterate over a traced value.

    graphscope trace examples/gru_torch.py --fw torch --method jit-trace --check-dynamic
"""

import torch
from torch import nn


class SequenceGRU(nn.Module):
    def __init__(self, features: int = 4, hidden: int = 8) -> None:
        super().__init__()
        self.hidden = hidden
        self.cell = nn.GRUCell(features, hidden)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [batch, time, features]
        h = torch.zeros(x.shape[0], self.hidden)
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h)
        return self.head(h)


torch.manual_seed(0)
model = SequenceGRU()
example_inputs = (torch.randn(2, 3, 4),)
# A longer sequence: a static capture would not change, a trace does.
example_inputs_alt = (torch.randn(2, 5, 4),)
