"""Causal self-attention whose mask is a -inf constant (the TensorFlow twin of causal_mask_torch.py).

`tf.where(visible, scores, -inf)` hides the keys after each query and the padded ones; softmax
turns every -inf into a weight of exactly 0. The -inf is deliberate: `graphscope step` says how
many values hold a mask's -inf and does not count them as the first non-finite value.

    graphscope step examples/causal_mask_tf.py --fw tf
    graphscope step examples/causal_mask_tf.py --fw tf --entry left_padded --until nonfinite

`left_padded` pads the start of the second row: its first query may look only at the first key,
which is padding, so softmax over a row of -inf is NaN, at the softmax, coming from the mask.
"""

import numpy as np
import tensorflow as tf


class Attention(tf.Module):
    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        rng = np.random.default_rng(0)
        with tf.name_scope("attention"):
            self.qkv = tf.Variable(rng.normal(0.0, 0.3, (dim, 3 * dim)).astype(np.float32), name="qkv")
            self.proj = tf.Variable(rng.normal(0.0, 0.3, (dim, dim)).astype(np.float32), name="proj")

    def __call__(self, x: tf.Tensor, keep: tf.Tensor) -> tf.Tensor:
        q, k, v = tf.split(tf.einsum("btd,de->bte", x, self.qkv), 3, axis=-1)
        scores = tf.matmul(q, k, transpose_b=True) / tf.sqrt(tf.cast(tf.shape(q)[-1], tf.float32))
        t = tf.shape(x)[1]
        causal = tf.linalg.band_part(tf.ones([t, t], tf.bool), -1, 0)  # each query and the keys before
        visible = tf.logical_and(causal[None], keep[:, None, :])
        scores = tf.where(visible, scores, float("-inf"))
        weights = tf.nn.softmax(scores, axis=-1)
        return tf.einsum("bts,bsd,de->bte", weights, v, self.proj)


def _inputs(keep: list[list[bool]]) -> tuple[tf.Tensor, tf.Tensor]:
    x = np.random.default_rng(1).normal(size=(len(keep), len(keep[0]), 8)).astype(np.float32)
    return tf.constant(x), tf.constant(keep)


model = Attention()
example_inputs = _inputs([[True] * 5, [True, True, True, False, False]])  # padded at the end
example_targets = (tf.zeros([2, 5, 8]),)


def loss_fn(output: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.square(output - target))


def left_padded() -> tuple[Attention, tuple[tf.Tensor, tf.Tensor]]:
    return model, _inputs([[True] * 5, [False, False, True, True, True]])
