"""The "sqrt at zero" of sqrt_grad_torch.py in TensorFlow: a finite loss, an infinite gradient.

d/dx sqrt(x) = 1 / (2 sqrt(x)) is +Inf at x = 0, the first element of `offset + x`. The output
is a scalar already, so no `loss_fn` and no `example_targets` are needed.

    graphscope trace examples/sqrt_grad_tf.py --fw tf --backward
"""

import tensorflow as tf


class SqrtModel(tf.Module):
    def __init__(self) -> None:
        super().__init__(name="sqrt_model")
        self.offset = tf.Variable([0.0, 1.0, 4.0], name="offset")

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(tf.sqrt(self.offset + x))  # finite; its gradient at offset[0] is Inf


model = SqrtModel()
example_inputs = (tf.zeros(3),)
