"""Two tensors added, in TF2 with tf.function.

graphscope trace examples/tensor_sum_tf.py --fw tf
"""

import tensorflow as tf


@tf.function
def model(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    return a + b


example_inputs = (tf.ones([2, 3]), tf.fill([2, 3], 2.0))
