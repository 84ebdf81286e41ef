"""The eager graph: the ATen ops as they ran on the example inputs (see graphscope.stepping.torch_eager)."""

from __future__ import annotations

from graphscope.stepping.torch_eager import capture

__all__ = ["capture"]
