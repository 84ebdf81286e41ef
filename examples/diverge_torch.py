"""A learning rate that diverges after some steps: `graphscope watch` finds the step.

Plain SGD on a least-squares problem with a learning rate above 2 / (the largest eigenvalue of
the inputs' covariance): each step overshoots more than the last, the weights grow without
bound, and after a few dozen steps the loss overflows float32 to inf, then NaN.

    graphscope watch examples/diverge_torch.py --fw torch --steps 100
"""

import torch
from torch import nn

torch.manual_seed(0)
model = nn.Linear(8, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=1.5)
example_inputs = (torch.randn(64, 8) * 3,)
example_targets = (torch.randn(64, 1),)


def loss_fn(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return nn.functional.mse_loss(output, target)
