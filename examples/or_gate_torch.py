"""The OR gate as a 3-layer sigmoid MLP in PyTorch: the classic first network.

graphscope trace examples/or_gate_torch.py --fw torch
"""

import numpy as np
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


def _same_weights_as_tf(net: OrGate) -> None:
    """The kernels and biases of or_gate_tf.py (one seeded numpy generator, in layer order), so
    `graphscope diff examples/or_gate_tf.py examples/or_gate_torch.py --values` finds them equal."""
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for layer, bias in ((net.hidden1, 0.1), (net.hidden2, 0.2), (net.out, 0.3)):
            kernel = rng.normal(0.0, 0.05, (layer.in_features, layer.out_features)).astype(np.float32)
            layer.weight.copy_(torch.from_numpy(kernel.T))  # TF kernels are [in, out]
            layer.bias.fill_(bias)


_same_weights_as_tf(model)
