"""`log` of a softmax that underflows: a cross-entropy written by hand, log(softmax(logits)).

The logits of the second row are far apart (more than 104 between the largest and the smallest),
so exp() of the smallest, relative to the largest, is below float32's smallest number: softmax
gives exactly 0 there, and log(0) = -inf. The -inf is born in the forward pass, at `torch.log`
in `loss_fn`; the target's 0 times -inf then makes the loss NaN, and in the backward pass the
gradient of log (grad / 0) is NaN too. `torch.log_softmax` (or `nn.CrossEntropyLoss`) computes
the same thing without the underflow.

    graphscope step examples/log_softmax_torch.py --fw torch --train --until nonfinite
"""

import torch
from torch import nn

model = nn.Linear(4, 3)
with torch.no_grad():
    model.weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]))
    model.bias.zero_()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
example_inputs = (torch.tensor([[1.0, 2.0, 0.5, 0.0], [60.0, -60.0, 0.0, 0.0]]),)
example_targets = (torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]),)  # one-hot classes


def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    probs = torch.softmax(logits, dim=-1)
    return -(target * torch.log(probs)).sum(dim=-1).mean()  # log(0) = -inf where probs underflowed
