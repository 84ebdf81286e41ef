"""A learning rate that diverges after some steps, in Keras: `graphscope watch` finds the step.

The twin of diverge_torch.py: plain SGD on a least-squares problem with a learning rate above
2 / (the largest eigenvalue of the inputs' covariance): each step overshoots more than the
last, the weights grow without bound, and after a few dozen steps the loss overflows float32
to inf, then NaN.

    graphscope watch examples/diverge_tf.py --fw tf --steps 100
"""

import keras
import tensorflow as tf

keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, name="linear")], name="linear_model")
optimizer = keras.optimizers.SGD(learning_rate=1.5)
example_inputs = (tf.random.normal((64, 8), seed=1) * 3,)
example_targets = (tf.random.normal((64, 1), seed=2),)


def loss_fn(output: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.square(output - target))
