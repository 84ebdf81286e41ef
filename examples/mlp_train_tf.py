"""The MLP of mlp_train_torch.py in Keras, trained with mean squared error: the train step's
graph as a tf.function builds it, forward, loss and the gradient ops of `tape.gradient`.

    graphscope trace examples/mlp_train_tf.py --fw tf --backward -o mlp_train_tf.json

Each gradient op is linked (`grad_of`) to the forward op whose gradient function made it, and
each returned gradient to its variable.
"""

import keras
import tensorflow as tf

keras.utils.set_random_seed(0)
model = keras.Sequential(
    [
        keras.Input((3,)),
        keras.layers.Dense(8, activation="relu", name="hidden"),
        keras.layers.Dense(1, name="out"),
    ],
    name="mlp",
)


def loss_fn(output: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.square(output - target))


example_inputs = (tf.random.normal((4, 3), seed=1),)
example_targets = (tf.random.normal((4, 1), seed=2),)
