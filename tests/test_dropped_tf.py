"""A value dropped on the way, TensorFlow side: T5's log(0) bucket (cast to an integer, selected
around) is not the first non-finite value of a `tf.function`; a NaN born after it is, with its
inputs (test_dropped.py has the rule and the PyTorch side)."""

from __future__ import annotations

import math
from typing import Any

import pytest

import graphscope

tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.tf


class Buckets(tf.Module):
    def __init__(self, nan_later: bool = False) -> None:
        super().__init__()
        self.emb = tf.Variable(tf.random.stateless_normal([8], seed=[1, 2]))
        self.nan_later = nan_later

    @tf.function
    def __call__(self, x: Any) -> Any:
        t = tf.shape(x)[1]
        rel = tf.abs(tf.range(t)[None, :] - tf.range(t)[:, None])
        large = 2 + tf.cast(tf.math.log(tf.cast(rel, tf.float32) / 2) / math.log(4) * 2, tf.int32)
        buckets = tf.where(rel < 2, rel, tf.minimum(large, 7))
        out = tf.linalg.matvec(tf.gather(self.emb, buckets), x[0])
        if self.nan_later:
            out = tf.sqrt(out - 1e6)
        return out


def test_a_log_of_zero_dropped_on_the_way_is_not_the_culprit_in_tf() -> None:
    x = tf.random.stateless_normal([1, 5], seed=[3, 4])
    model = Buckets()
    assert bool(tf.reduce_all(tf.math.is_finite(model(x))))  # TensorFlow's own output: finite
    steps = graphscope.step(model, (x,), fw="tf")
    log = next(r for r in steps if r.op == "Log")
    assert log.summary is not None and log.summary["neginf"] == 5
    assert steps.first_nonfinite is None
    dropped = steps.dropped()
    assert dropped is not None and dropped["first"]["node"] == log.node
    assert [steps.record(n).op for n in dropped["absorbed_by"]] == ["Cast"]  # type: ignore[union-attr]


def test_a_nan_after_a_dropped_log_is_named_in_tf() -> None:
    x = tf.random.stateless_normal([1, 5], seed=[3, 4])
    steps = graphscope.step(Buckets(nan_later=True), (x,), fw="tf")
    bad = steps.first_nonfinite
    assert bad is not None and bad.op == "Sqrt" and bad.born is True


def test_a_value_read_into_a_loops_tensor_list_is_not_dropped() -> None:
    """Keras' LSTM reads its sequence into a TensorList (a variant: no values to count) and its
    while loop reads the list. Taken as finite, the list 'absorbed' log(0)'s -inf: the log was
    set aside as dropped and the culprit named inside the loop."""
    import keras

    class LogLSTM(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = keras.layers.LSTM(4)

        def call(self, x: Any) -> Any:
            return self.lstm(tf.math.log(x))

    keras.utils.set_random_seed(0)
    model = LogLSTM()
    x = tf.concat([tf.zeros([2, 1, 3]), tf.ones([2, 4, 3])], axis=1)  # log(0) at the first step
    assert not bool(tf.reduce_all(tf.math.is_finite(model(x))))  # Keras' own output: not finite
    steps = graphscope.step(model, (x,), fw="tf")
    bad = steps.first_nonfinite
    assert bad is not None and bad.op == "Log" and bad.born is True, bad
    assert steps.dropped() is None
