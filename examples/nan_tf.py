"""A NaN born deep inside a tf.function, and carried to its output (the TF2 twin of nan_torch.py).

`encoder` is a dense layer with a tanh, so its outputs lie in (-1, 1); `compress` then takes
their log, as if to squeeze the range. For this input some tanh outputs are negative, and the
log of a negative number is NaN: the NaN is born at `compress/Log`. The `head` layers after it
(a matmul that mixes every feature into every output, a normalisation, a softmax) spread the
NaN everywhere, so the output is all NaN, but stepping finds where it was born.

    graphscope step examples/nan_tf.py --fw tf --until nonfinite
"""

import numpy as np
import tensorflow as tf


class Model(tf.Module):
    def __init__(self) -> None:
        super().__init__()
        rng = np.random.default_rng(0)
        with tf.name_scope("encoder"):
            self.w1 = tf.Variable(rng.normal(0.0, 0.5, (8, 16)).astype(np.float32), name="kernel")
            self.b1 = tf.Variable(np.zeros(16, np.float32), name="bias")
        with tf.name_scope("head"):
            self.w2 = tf.Variable(rng.normal(0.0, 0.5, (16, 4)).astype(np.float32), name="kernel")
            self.b2 = tf.Variable(np.zeros(4, np.float32), name="bias")

    @tf.function
    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        with tf.name_scope("encoder"):
            h = tf.tanh(tf.matmul(x, self.w1) + self.b1)  # in (-1, 1): some values are negative
        with tf.name_scope("compress"):
            h = tf.math.log(h)  # the NaN is born here: log of the negative tanh outputs
        with tf.name_scope("head"):
            y = tf.matmul(h, self.w2) + self.b2  # each row with a NaN becomes all NaN
            mean, std = tf.reduce_mean(y, -1, keepdims=True), tf.math.reduce_std(y, -1, keepdims=True)
            y = (y - mean) / std
            return tf.nn.softmax(y)


model = Model()
example_inputs = (tf.constant(np.random.default_rng(1).normal(size=(4, 8)).astype(np.float32)),)
