"""The smallest graph there is: two tensors added.

graphscope trace examples/tensor_sum_torch.py --fw torch
"""

import torch
from torch import nn


class TensorSum(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


model = TensorSum()
example_inputs = (torch.ones(2, 3), torch.full((2, 3), 2.0))
