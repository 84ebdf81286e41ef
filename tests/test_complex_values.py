"""Complex tensors (an FFT's spectrum) hold NaN and infinities too: a summary counts them, or a
NaN made in the complex domain is blamed on the op that brings it back to real numbers."""

from __future__ import annotations

import pytest

import graphscope
from graphscope.stepping import numerics

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch


class Spectral(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.fft.rfft(x)
        z = z * torch.log(torch.zeros(1))  # log(0) = -inf: the spectrum is infinite, NaN at 0 * -inf
        return torch.fft.irfft(z, n=x.shape[-1]).abs().sum()


def test_the_log_that_made_a_spectrum_infinite_is_the_culprit_not_the_inverse_fft() -> None:
    steps = graphscope.step(Spectral(), (torch.randn(2, 8, generator=torch.Generator().manual_seed(0)),))
    bad = steps.first_nonfinite
    assert bad is not None and bad.node == "log"
    assert steps.dropped() is None  # the -inf reached the output through the spectrum
    mul = next(r for r in steps if r.node == "mul")
    z = torch.fft.rfft(torch.randn(2, 8, generator=torch.Generator().manual_seed(0))) * float("-inf")
    assert mul.summary is not None and mul.summary["nan"] == int(torch.isnan(z).sum()) > 0


def test_a_complex_summary_counts_nan_and_infinities_by_element() -> None:
    z = torch.tensor([1 + 1j, complex("nan"), complex(float("inf"), 0), complex(0, float("-inf")), 0j])
    summary = numerics.summarize_torch(z)
    assert (summary["nan"], summary["posinf"], summary["neginf"], summary["zeros"]) == (1, 1, 1, 1)
    assert summary["shape"] == [5] and summary["dtype"] == "complex64"
    assert summary["min"] is None  # complex numbers have no order


def test_numpy_complex_summaries_count_as_torchs() -> None:
    z = torch.tensor([1 + 1j, complex("nan"), complex(float("inf"), 0), complex(0, float("-inf")), 0j])
    assert numerics.summarize_numpy(z.numpy()) == numerics.summarize_torch(z)
