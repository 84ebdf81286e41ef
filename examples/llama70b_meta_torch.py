"""A Llama-3-70B-sized model's graph, without its 140 GB of weights.

Built on PyTorch's meta device, the model holds shapes and no data (a few hundred MB in all),
and `torch.export` traces it with full shapes:

    graphscope trace examples/llama70b_meta_torch.py --fw torch -o llama70b.json

Methods that run the model on real values (eager, jit-trace, jit-script, and `graphscope step`)
refuse it and say which methods do capture it. `LAYERS=2` in the environment builds a two-layer
model of the same width, for a quick look.
"""

import os

import torch
from transformers import LlamaConfig, LlamaForCausalLM

config = LlamaConfig(
    vocab_size=128256,
    hidden_size=8192,
    intermediate_size=28672,
    num_hidden_layers=int(os.environ.get("LAYERS", "80")),
    num_attention_heads=64,
    num_key_value_heads=8,
    max_position_embeddings=8192,
    use_cache=False,  # a DynamicCache output is not a tensor: export wants tensors out
)
with torch.device("meta"):  # or accelerate's init_empty_weights()
    model = LlamaForCausalLM(config).eval()

example_inputs = (torch.ones(1, 32, dtype=torch.long, device="meta"),)
