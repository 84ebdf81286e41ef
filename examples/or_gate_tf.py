"""The OR gate in TF2: eager code turned into a graph by tf.function.

graphscope trace examples/or_gate_tf.py --fw tf
"""

import numpy as np
import tensorflow as tf


class OrGate(tf.Module):
    def __init__(self) -> None:
        super().__init__()
        # The same kernels as or_gate_tf1.py: one seeded numpy generator, drawn in layer order.
        rng = np.random.default_rng(0)
        self.layers = []
        layers = [("hidden1", 2, 4, 0.1), ("hidden2", 4, 4, 0.2), ("out", 4, 1, 0.3)]
        for name, fan_in, units, bias in layers:
            with tf.name_scope(name):
                kernel = rng.normal(0.0, 0.05, (fan_in, units)).astype(np.float32)
                self.layers.append(
                    (
                        tf.Variable(kernel, name="kernel"),
                        tf.Variable(tf.fill([units], bias), name="bias"),
                    )
                )

    @tf.function
    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        for name, (w, b) in zip(["hidden1", "hidden2", "out"], self.layers):
            with tf.name_scope(name):
                x = tf.sigmoid(tf.matmul(x, w) + b)
        return x


model = OrGate()
example_inputs = (tf.constant([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]),)
