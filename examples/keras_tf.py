"""A small Keras model (convolution, pooling, dense): layer names become scopes.

graphscope trace examples/keras_tf.py --fw tf
"""

import keras
import numpy as np

keras.utils.set_random_seed(0)
model = keras.Sequential(
    [
        keras.Input((8, 8, 3)),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv"),
        keras.layers.MaxPooling2D(name="pool"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(2, activation="softmax", name="classifier"),
    ],
    name="small_cnn",
)
example_inputs = (np.zeros((1, 8, 8, 3), dtype=np.float32),)
