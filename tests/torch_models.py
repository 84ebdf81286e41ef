"""Real-size PyTorch models for the slow tests and the benchmarks (no torchvision here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch
from torch import nn


def _example(name: str) -> Any:
    """Import examples/<name>.py: the examples are the one definition of these models."""
    path = Path(__file__).resolve().parents[1] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"graphscope_example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def resnet50(batch: int = 1, size: int = 224) -> tuple[nn.Module, tuple[Any, ...]]:
    example = _example("resnet50_torch")
    torch.manual_seed(0)
    return example.ResNet50().eval(), (torch.randn(batch, 3, size, size),)


def transformer_encoder(
    batch: int = 2, seq: int = 16, layers: int = 12, dim: int = 256
) -> tuple[nn.Module, tuple[Any, ...]]:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=dim, nhead=8, dim_feedforward=4 * dim, batch_first=True)
    model = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False).eval()
    return model, (torch.randn(batch, seq, dim),)


def gpt2(batch: int = 1, seq: int = 8, layers: int = 2, width: int = 64) -> tuple[nn.Module, tuple[Any, ...]]:
    """GPT-2 from transformers' config: random weights, nothing downloaded."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(
        n_layer=layers,
        n_embd=width,
        n_head=4,
        vocab_size=512,
        n_positions=max(64, seq),
        bos_token_id=0,
        eos_token_id=0,
        use_cache=False,
    )
    model = GPT2LMHeadModel(config).eval()
    return model, (torch.randint(0, 512, (batch, seq)),)
