"""TensorFlow's complex tensors are counted for NaN and infinities too (as PyTorch's: see
test_complex_values.py): a NaN made in the complex domain is not blamed on the op that brings
it back to real numbers."""

from __future__ import annotations

import pytest

import graphscope
from graphscope.stepping import numerics

tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.tf


class Spectral(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([2, 8], tf.float32)])
    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        z = tf.signal.rfft(x)
        z = z * tf.cast(tf.math.log(tf.zeros([1])), tf.complex64)  # log(0) = -inf into the spectrum
        return tf.reduce_sum(tf.abs(tf.signal.irfft(z)))


def test_the_log_that_made_a_spectrum_infinite_is_the_culprit_not_the_inverse_fft() -> None:
    x = tf.random.stateless_normal([2, 8], seed=[0, 1])
    steps = graphscope.step(Spectral(), (x,), fw="tf")
    bad = steps.first_nonfinite
    assert bad is not None and bad.op == "Log", bad
    assert steps.dropped() is None
    spectrum = next(r for r in steps if r.op == "Mul" and r.summary and r.summary["dtype"] == "complex64")
    assert spectrum.summary["nan"] + spectrum.summary["posinf"] == 10  # every element of 2x5


def test_a_complex_summary_counts_nan_infinity_and_zeros_by_element() -> None:
    inf, nan = float("inf"), float("nan")
    z = tf.constant([1 + 1j, complex(nan, 0), complex(inf, 0), complex(0, -inf), 0j], tf.complex64)
    summary, _ = numerics.read_tf_summary(numerics.summarize_tf_graph(z).numpy(), z.dtype)
    # an infinity in either part is counted +inf (its sign is the modulus')
    assert (summary["nan"], summary["posinf"], summary["neginf"], summary["zeros"]) == (1, 2, 0, 1)
    assert summary["shape"] == [5] and summary["dtype"] == "complex64" and summary["min"] is None
