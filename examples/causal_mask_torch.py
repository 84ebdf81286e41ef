"""Causal self-attention whose mask is built from -inf, as attention code builds it.

`torch.full(..., -inf).triu(1)` hides the keys after each query, and `masked_fill(..., -inf)`
the padded ones; softmax turns every -inf into a weight of exactly 0. The -inf is deliberate:
`graphscope step` says how many values hold a mask's -inf and does not count them as the first
non-finite value. Two entry points show when a mask's -inf does matter:

    graphscope step examples/causal_mask_torch.py --fw torch
    graphscope step examples/causal_mask_torch.py --fw torch --entry left_padded --until nonfinite
    graphscope step examples/causal_mask_torch.py --fw torch --entry log_weights --until nonfinite

`left_padded` pads the start of the second row: its first query may look only at the first key,
which is padding, so every key of that row is masked and softmax over all -inf is NaN, at the
softmax, coming from the mask. `log_weights` returns the log of the attention weights: the 0s
the mask made become -inf again, born at `log`, and reach the output.
"""

import math

import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim: int = 8, *, log_weights: bool = False) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.log_weights = log_weights

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        causal = torch.full((t, t), float("-inf")).triu(1)  # the keys after each query
        scores = (scores + causal).masked_fill(~keep[:, None, :], float("-inf"))  # and padding
        weights = scores.softmax(dim=-1)
        if self.log_weights:
            return torch.log(weights)  # log(0) = -inf where the mask put a 0
        return self.proj(weights @ v)


def _inputs(keep: list[list[bool]]) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(len(keep), len(keep[0]), 8, generator=torch.Generator().manual_seed(1))
    return x, torch.tensor(keep)


torch.manual_seed(0)
model = Attention()
example_inputs = _inputs([[True] * 5, [True, True, True, False, False]])  # padded at the end
example_targets = (torch.zeros(2, 5, 8),)


def loss_fn(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return ((output - target) ** 2).mean()


def left_padded() -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    return model, _inputs([[True] * 5, [False, False, True, True, True]])


def log_weights() -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(0)
    return Attention(log_weights=True), example_inputs
