"""Big models on PyTorch's meta device: graphscope's capture against the bare torch.export call.

Each measurement runs in a fresh process: the model is built on the meta device (no weights),
then one call is timed, and the process's peak RSS read (ru_maxrss). Run by hand:

    .venv/bin/python bench/bench_meta.py [--configs llama3-8b,llama3-70b,mixtral-8x7b] [--seq 32]

Prints one table (markdown) for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

CONFIGS = {
    # Llama-3-8B and -70B, Mixtral-8x7B: the published architectures' sizes.
    "llama3-8b": ("LlamaConfig", dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336,
                                      num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8)),
    "llama3-70b": ("LlamaConfig", dict(vocab_size=128256, hidden_size=8192, intermediate_size=28672,
                                       num_hidden_layers=80, num_attention_heads=64, num_key_value_heads=8)),
    "gpt2-xl": ("GPT2Config", dict(vocab_size=50257, n_embd=1600, n_layer=48, n_head=25)),
    "mixtral-8x7b": ("MixtralConfig", dict(vocab_size=32000, hidden_size=4096, intermediate_size=14336,
                                           num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                                           num_local_experts=8, num_experts_per_tok=2)),
}  # fmt: skip

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time, gc
    import torch, transformers
    name, kwargs, seq, what = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    extra = {} if name == "GPT2Config" else {"max_position_embeddings": 8192}
    config = getattr(transformers, name)(**kwargs, use_cache=False, **extra)
    cls = {"MixtralConfig": transformers.MixtralForCausalLM, "GPT2Config": transformers.GPT2LMHeadModel}.get(
        name, transformers.LlamaForCausalLM
    )
    with torch.device("meta"):
        model = cls(config).eval()
    inputs = (torch.ones(1, seq, dtype=torch.long, device="meta"),)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    gc.collect()
    start = time.perf_counter()
    views = {}
    if what == "export":
        ep = torch.export.export(model, inputs)
        nodes = len(ep.graph.nodes)
    elif what == "torchview":
        import torchview
        drawing = torchview.draw_graph(model, input_data=inputs, device="meta", depth=2)
        nodes = len(drawing.visual_graph.body)
    else:
        import graphscope
        g = graphscope.trace(model, inputs, fw="torch", method="export")
        nodes = len(g)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if what == "graphscope":
        import asyncio, tempfile, os
        from graphscope.rendering import svg
        from graphscope.tui.app import GraphscopeApp
        t = time.perf_counter()
        svg.render(g, os.path.join(tempfile.mkdtemp(), "g.svg"), quiet=True)
        views["render"] = time.perf_counter() - t
        async def tui():
            t = time.perf_counter()
            async with GraphscopeApp(g).run_test(size=(160, 45)) as pilot:
                await pilot.pause()
                views["tui"] = time.perf_counter() - t
        asyncio.run(tui())
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024, "before_mb": before / 1024,
                      "nodes": nodes, "params": params, **views}))
    """
)


def measure(config: str, what: str, seq: int) -> dict[str, float]:
    name, kwargs = CONFIGS[config]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, name, json.dumps(kwargs), str(seq), what],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--seq", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print(
        "| model (meta) | parameters | bare torch.export | graphscope trace | ratio | peak RSS bare / graphscope "
        "| nodes (FX / IR) | render (folded) | TUI open | torchview (depth 2) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for config in args.configs.split(","):
        runs = {
            what: min(
                (measure(config, what, args.seq) for _ in range(args.repeats)), key=lambda r: r["seconds"]
            )
            for what in ("export", "graphscope")
        }
        try:
            view = measure(config, "torchview", args.seq)
            torchview = f"{view['seconds']:.2f} s, {view['peak_mb']:.0f} MB"
        except subprocess.CalledProcessError as exc:
            torchview = "failed: " + (exc.stderr.strip().splitlines() or ["?"])[-1][:60]
        bare, ours = runs["export"], runs["graphscope"]
        print(
            f"| {config} | {bare['params'] / 1e9:.1f} B | {bare['seconds']:.2f} s | {ours['seconds']:.2f} s | "
            f"{ours['seconds'] / bare['seconds']:.2f}x | {bare['peak_mb']:.0f} / {ours['peak_mb']:.0f} MB | "
            f"{bare['nodes']:.0f} / {ours['nodes']:.0f} | {ours['render']:.2f} s | {ours['tui']:.2f} s | {torchview} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
