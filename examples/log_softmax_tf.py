"""`log` of a softmax that underflows, in Keras: log_softmax_torch.py's twin.

The logits of the second row are far apart (more than 104 between the largest and the smallest),
so softmax gives exactly 0 for the smallest, and log(0) = -inf. The -inf is born in the forward
pass, at `tf.math.log` in `loss_fn`; the target's 0 times -inf then makes the loss NaN.
`tf.nn.log_softmax` (or `keras.losses.CategoricalCrossentropy(from_logits=True)`) computes the
same thing without the underflow.

    graphscope step examples/log_softmax_tf.py --fw tf --train --until nonfinite
"""

import keras
import tensorflow as tf

model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="logits")], name="classifier")
model.get_layer("logits").set_weights([tf.eye(4, 3).numpy(), tf.zeros(3).numpy()])
optimizer = keras.optimizers.SGD(learning_rate=0.1)
example_inputs = (tf.constant([[1.0, 2.0, 0.5, 0.0], [60.0, -60.0, 0.0, 0.0]]),)
example_targets = (tf.constant([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]),)  # one-hot classes


def loss_fn(logits: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    probs = tf.nn.softmax(logits, axis=-1)
    return -tf.reduce_mean(tf.reduce_sum(target * tf.math.log(probs), axis=-1))  # log(0) = -inf
