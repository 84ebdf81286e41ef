"""`conv_port_tf.py` ported to PyTorch (NCHW), with one deliberate bug: a wrong transpose.

TF flattens its NHWC activations in H, W, C order, so the port must permute NCHW to NHWC
before flattening for the dense weights to line up. It permutes to N, W, H, C instead: the
shapes still fit (H == W), so nothing fails, but the head sees its inputs shuffled.
`graphscope diff --values` finds the head as the first node whose values differ, and the
permute just before it as the suspect:

    graphscope diff examples/conv_port_tf.py examples/conv_port_torch.py --fw-a tf --fw-b torch --values --ignore layout
"""

import numpy as np
import torch
from torch import nn


def tf_weights() -> dict[str, np.ndarray]:
    """The same draws as conv_port_tf.weights() (HWIO kernels, [in, out] dense)."""
    rng = np.random.default_rng(0)
    return {
        "conv1": rng.normal(0, 0.3, (3, 3, 3, 8)).astype(np.float32),
        "conv1_b": rng.normal(0, 0.1, (8,)).astype(np.float32),
        "conv2": rng.normal(0, 0.2, (3, 3, 8, 8)).astype(np.float32),
        "conv2_b": rng.normal(0, 0.1, (8,)).astype(np.float32),
        "head": rng.normal(0, 0.1, (6 * 6 * 8, 4)).astype(np.float32),
        "head_b": rng.normal(0, 0.1, (4,)).astype(np.float32),
    }


class ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(6 * 6 * 8, 4)
        w = tf_weights()
        with torch.no_grad():
            for conv, name in ((self.conv1, "conv1"), (self.conv2, "conv2")):
                conv.weight.copy_(torch.from_numpy(w[name].transpose(3, 2, 0, 1)))  # HWIO -> OIHW
                conv.bias.copy_(torch.from_numpy(w[f"{name}_b"]))
            self.head.weight.copy_(torch.from_numpy(w["head"].T))
            self.head.bias.copy_(torch.from_numpy(w["head_b"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [N, C, H, W]
        h = torch.relu(self.conv1(x))
        h = torch.relu(self.conv2(h))
        h = h.permute(0, 3, 2, 1)  # BUG: NCHW -> NWHC; TF's order needs permute(0, 2, 3, 1)
        return self.head(h.reshape(h.shape[0], -1))


IMAGES = np.random.default_rng(1).normal(size=(2, 6, 6, 3)).astype(np.float32)  # NHWC, as in TF
model = ConvNet().eval()
example_inputs = (torch.from_numpy(IMAGES.transpose(0, 3, 1, 2).copy()),)
