"""A small conv net in TensorFlow (NHWC), the original of the port in `conv_port_torch.py`.

graphscope diff examples/conv_port_tf.py examples/conv_port_torch.py --fw-a tf --fw-b torch --values --ignore layout
"""

import numpy as np
import tensorflow as tf


def weights() -> dict[str, np.ndarray]:
    """The trained weights, in TF's layouts (HWIO kernels, [in, out] dense)."""
    rng = np.random.default_rng(0)
    return {
        "conv1": rng.normal(0, 0.3, (3, 3, 3, 8)).astype(np.float32),
        "conv1_b": rng.normal(0, 0.1, (8,)).astype(np.float32),
        "conv2": rng.normal(0, 0.2, (3, 3, 8, 8)).astype(np.float32),
        "conv2_b": rng.normal(0, 0.1, (8,)).astype(np.float32),
        "head": rng.normal(0, 0.1, (6 * 6 * 8, 4)).astype(np.float32),
        "head_b": rng.normal(0, 0.1, (4,)).astype(np.float32),
    }


class ConvNet(tf.Module):
    def __init__(self) -> None:
        super().__init__()
        w = weights()
        self.v = {k: tf.Variable(v, name=k) for k, v in w.items()}

    @tf.function
    def __call__(self, x: tf.Tensor) -> tf.Tensor:  # x: [N, H, W, C]
        v = self.v
        with tf.name_scope("conv1"):
            h = tf.nn.relu(tf.nn.conv2d(x, v["conv1"], 1, "SAME") + v["conv1_b"])
        with tf.name_scope("conv2"):
            h = tf.nn.relu(tf.nn.conv2d(h, v["conv2"], 1, "SAME") + v["conv2_b"])
        with tf.name_scope("head"):
            h = tf.reshape(h, [-1, 6 * 6 * 8])  # flattens H, W, C in that order
            return tf.matmul(h, v["head"]) + v["head_b"]


IMAGES = np.random.default_rng(1).normal(size=(2, 6, 6, 3)).astype(np.float32)  # NHWC
model = ConvNet()
example_inputs = (tf.constant(IMAGES),)
