"""A branch on a tensor's value: what each capture method makes of data-dependent control flow.

fx and export refuse it; jit-trace records only the branch the example took (and warns);
jit-script keeps both branches as a prim::If; Dynamo breaks the graph at the `if`.

    graphscope trace examples/data_dependent_torch.py --fw torch --method jit-trace --check-dynamic
"""

import torch
from torch import nn


class Gate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj(x)
        if h.sum() > 0:
            return torch.relu(h) * 2
        return torch.tanh(h)


torch.manual_seed(0)
model = Gate()
example_inputs = (torch.full((2, 3), 5.0),)
# Takes the other branch: --check-dynamic shows jit-trace's graph change.
example_inputs_alt = (torch.full((2, 3), -5.0),)
