"""tf.cond and tf.while_loop inside tf.function: control flow v2, bodies as functions.

graphscope trace examples/control_flow_tf.py --fw tf
"""

import tensorflow as tf


@tf.function
def model(x: tf.Tensor) -> tf.Tensor:
    x = tf.cond(tf.reduce_sum(x) > 0, lambda: x * 2.0, lambda: -x)
    i = tf.constant(0)
    _, x = tf.while_loop(lambda i, x: i < 3, lambda i, x: (i + 1, tf.tanh(x) + 1.0), [i, x])
    return x


example_inputs = (tf.ones([2, 3]),)
