"""The eager graph: the ATen ops as they ran on the example inputs (see graphscope.step.torch_eager)."""

from __future__ import annotations

from graphscope.step.torch_eager import capture

__all__ = ["capture"]
