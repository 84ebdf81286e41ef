"""Stepping cost against a plain forward pass and torchlens, with peak memory.

    .venv/bin/python bench/bench_step_torch.py [--repeat 3]

Each (model, tool) pair runs in a fresh process so that its peak RSS is its own. Rows:
plain forward pass (no_grad), graphscope step with the default method (eager: every ATen op
summarised), graphscope step --method fx, and torchlens.trace (torchlens 2's name for
log_forward_pass) keeping every activation, as it does by default. Times are the median of
--repeat runs after one warm-up; "peak" is the process's peak RSS, "above" what it added over
the process after the model and inputs were built and the tool's modules imported (on a tiny
model). "× forward, interleaved" is measured inside the tool's process: the tool and a plain
forward pass run alternately (A B A B ...), the ratio of their medians, so that a busy spell on a
shared machine lands on both.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

MODELS = {
    "ResNet-50 (8x3x224x224)": ("resnet50", {"batch": 8}),
    "Transformer 12 layers (8x128x256)": ("transformer_encoder", {"batch": 8, "seq": 128, "layers": 12}),
    "GPT-2 12 layers (8x128, width 256)": ("gpt2", {"batch": 8, "seq": 128, "layers": 12, "width": 256}),
}
TOOLS = ["forward", "graphscope step", "graphscope step --method fx", "torchlens.trace"]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(model_key: str, tool: str, repeat: int) -> dict[str, Any]:
    import statistics

    import torch

    from graphscope import stepping
    from tests import torch_models

    warnings.simplefilter("ignore")
    torch.set_num_threads(2)
    builder, kwargs = MODELS[model_key]
    model, inputs = getattr(torch_models, builder)(**kwargs)
    # Import each tool's machinery first (a tiny model): the module imports are a fixed cost,
    # not memory that stepping this model needs.
    tiny, tiny_in = torch.nn.Sequential(torch.nn.Linear(2, 2)), (torch.zeros(1, 2),)
    if tool.startswith("graphscope"):
        stepping.step(tiny, tiny_in, fw="torch", method="fx" if "fx" in tool else None)
    elif tool == "torchlens.trace":
        import torchlens

        torchlens.trace(tiny, tiny_in[0])
    base = _rss_mb()

    def run() -> Any:
        if tool == "forward":
            with torch.no_grad():
                return model(*inputs)
        if tool == "graphscope step":
            return stepping.step(model, inputs, fw="torch")
        if tool == "graphscope step --method fx":
            return stepping.step(model, inputs, fw="torch", method="fx")
        if tool == "torchlens.trace":
            import torchlens

            return torchlens.trace(model, inputs[0])
        raise ValueError(tool)

    def forward() -> Any:
        with torch.no_grad():
            return model(*inputs)

    times = []
    records = None
    for i in range(repeat + 1):
        start = time.perf_counter()
        result = run()
        if i:
            times.append(time.perf_counter() - start)
        if tool.startswith("graphscope"):
            records = len(result)
        del result
    interleaved = float("nan")
    if tool != "forward":
        from _timing import timed_pair

        tool_s, forward_s = timed_pair(run, forward, repeat)
        interleaved = tool_s / forward_s
    return {
        "steps": records,
        "seconds": statistics.median(times),
        "peak_mb": _rss_mb(),
        "above_mb": _rss_mb() - base,
        "records": records,
        "interleaved": interleaved,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "TOOL"))
    parser.add_argument("--models", default="", help="comma-separated words that pick models (gpt2,resnet)")
    parser.add_argument(
        "--tools", default="", help="comma-separated tool names to run (forward is always run)"
    )
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], args.repeat)))
        return
    print(
        "| model | tool | steps | time (s) | × forward | × forward, interleaved | peak RSS (MB) "
        "| above model (MB) | × forward (above) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    picked = [w.lower() for w in args.models.split(",") if w]
    tools = [t for t in TOOLS if t == "forward" or not args.tools or t in args.tools.split(",")]
    for model_key in MODELS:
        if picked and not any(w in model_key.lower().replace("-", "") for w in picked):
            continue
        plain: dict[str, Any] = {}
        for tool in tools:
            proc = subprocess.run(
                [sys.executable, __file__, "--repeat", str(args.repeat), "--worker", model_key, tool],
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["?"])[-1]
                print(f"| {model_key} | {tool} | | failed: {last[:80]} | | | | | |")
                continue
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            if tool == "forward":
                plain = row
            ratio = row["seconds"] / plain["seconds"] if plain else float("nan")
            mem_ratio = (
                row["above_mb"] / plain["above_mb"] if plain and plain["above_mb"] > 0 else float("nan")
            )
            print(
                f"| {model_key} | {tool} | {row['steps'] or ''} | {row['seconds']:.3f} | {ratio:.2f} "
                f"| {'' if tool == 'forward' else format(row['interleaved'], '.2f')} | {row['peak_mb']:.0f} "
                f"| {row['above_mb']:.0f} | {mem_ratio:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
