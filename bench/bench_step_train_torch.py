"""A stepped training step (``step --train``) and ``watch`` against plain training steps, with
PyTorch's ``detect_anomaly`` and TorchLens' backward capture beside them.

    .venv/bin/python bench/bench_step_train_torch.py [--repeat 3] [--steps 50] [--models gpt,resnet]

Each (model, tool) pair runs in a fresh process, so that its peak RSS is its own. "Plain step" is
what training does once: forward, loss (the output's mean square), ``loss.backward()``,
``optimizer.step()`` (AdamW) and the gradients cleared. Rows:

- ``graphscope step --train``: :func:`graphscope.stepping.torch_train.step_train` (forward,
  loss, backward and update, every value summarised, on a copy of the model and optimizer);
- ``detect_anomaly``: one plain step under ``torch.autograd.detect_anomaly()``;
- ``torchlens backward``: ``torchlens.trace`` with ``save_grads=True, backward_ready=True``, the
  loss, ``trace.log_backward(loss)`` and ``torchlens.debug.bisect_nan_backward`` (its finder of
  where a non-finite gradient was born); no update;
- ``plain ×N`` / ``graphscope watch N``: N plain steps, against ``watch`` over N steps.

Time: the tool and the plain step (or N plain steps) run alternately after one warm-up each
(A B A B ...), the ratio of their medians, so that a busy spell on a shared machine lands on both.
Memory: the process's peak RSS over its RSS once the model, inputs and optimizer were built,
one plain step taken (gradients and optimizer state exist, as in training) and the tool's modules
imported (on a tiny model); measured on the tool's first timed call, before the interleaved runs.

``--small`` runs the step rows on watch's smaller inputs too (for a busy machine).
``--pin-malloc`` runs every worker with glibc's trim and mmap thresholds fixed
(``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_MMAP_THRESHOLD_``: freed memory is not handed back to the
system). Before watch trained the model in place and set the user's gradients aside as copies,
the rows differed in what the allocator did: holding the user's gradient tensors through the run
made the C library hand back and fault in again the gradients each step frees (33k page faults a
step on ResNet-50 at 2x112, against 12k), and the interleaved plain loop paid none, reusing the
hole watch's freed copies left. Now both rows fault alike; pinned, neither does.
``--origin`` instead runs each tool on ``examples/sqrt_grad_torch.py`` (the gradient of ``sqrt``
at 0 is inf) and prints what each says about where the non-finite value came from.
"""

from __future__ import annotations

import argparse
import json
import os
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
    "GPT-like 12 layers (8x128, width 256)": ("gpt", {"batch": 8, "seq": 128}),
    "ResNet-50 (4x3x224x224)": ("resnet", {"batch": 4, "size": 224}),
}
# watch runs N steps: smaller inputs, so that N steps of each take seconds, not minutes (the
# per-step overhead of watch is per parameter, so a smaller batch is the harder case).
WATCH_MODELS = {
    "GPT-like 12 layers (2x64, width 256)": ("gpt", {"batch": 2, "seq": 64}),
    "ResNet-50 (2x3x112x112)": ("resnet", {"batch": 2, "size": 112}),
}
# glibc's thresholds, read at process start: a fixed value (any) turns off their adjustment; this
# one keeps freed memory in the process (--pin-malloc)
PINNED = {"MALLOC_TRIM_THRESHOLD_": "4000000000", "MALLOC_MMAP_THRESHOLD_": "4000000000"}
TOOLS = ["plain step", "graphscope step --train", "detect_anomaly", "torchlens backward"]
WATCH_TOOLS = ["plain ×N", "graphscope watch N"]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def loss_fn(output: Any) -> Any:
    return output.float().pow(2).mean()


def build(kind: str, kwargs: dict[str, Any]) -> tuple[Any, tuple[Any, ...]]:
    import torch

    if kind == "gpt":
        from bench_backward_torch import gpt_like

        model, _ = gpt_like()
        torch.manual_seed(1)
        return model.train(), (torch.randint(0, 512, (kwargs["batch"], kwargs["seq"])),)
    from tests import torch_models

    model, _ = torch_models.resnet50(batch=kwargs["batch"], size=kwargs["size"])
    torch.manual_seed(1)
    return model.train(), (torch.randn(kwargs["batch"], 3, kwargs["size"], kwargs["size"]),)


def plain_step(model: Any, optimizer: Any, inputs: tuple[Any, ...]) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss_fn(model(*inputs)).backward()
    optimizer.step()


def worker(model_key: str, tool: str, repeat: int, steps: int) -> dict[str, Any]:
    import torch
    from _timing import timed_pair

    from graphscope.stepping import torch_train, torch_watch

    warnings.simplefilter("ignore")
    torch.set_num_threads(2)
    kind, kwargs = {**MODELS, **WATCH_MODELS}[model_key]
    model, inputs = build(kind, kwargs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    plain_step(model, optimizer, inputs)  # gradients and optimizer state exist, as in training
    tiny = torch.nn.Linear(2, 1)
    tiny_opt = torch.optim.SGD(tiny.parameters(), lr=0.1)
    tiny_in = (torch.ones(1, 2),)

    def tl_backward(m: Any, x: tuple[Any, ...]) -> Any:
        import torchlens
        from torchlens.debug import bisect_nan_backward
        from torchlens.options import CaptureOptions

        trace = torchlens.trace(m, x[0], capture=CaptureOptions(save_grads=True, backward_ready=True))
        loss = loss_fn(trace[trace.output_layers[-1]].out)
        trace.log_backward(loss)
        found = bisect_nan_backward(trace)
        m.zero_grad(set_to_none=True)
        return found

    def run_tool(m: Any, opt: Any, x: tuple[Any, ...]) -> Any:
        if tool == "plain step":
            return plain_step(m, opt, x)
        if tool == "graphscope step --train":
            return torch_train.step_train(m, x, name="m", loss_fn=loss_fn, optimizer=opt)
        if tool == "detect_anomaly":
            with torch.autograd.detect_anomaly(check_nan=True):
                return plain_step(m, opt, x)
        if tool == "torchlens backward":
            return tl_backward(m, x)
        if tool == "plain ×N":
            for _ in range(steps):
                plain_step(m, opt, x)
            return None
        if tool == "graphscope watch N":
            return torch_watch.watch(m, x, steps=steps, name="m", loss_fn=loss_fn, optimizer=opt)
        raise ValueError(tool)

    run_tool(tiny, tiny_opt, tiny_in)  # the tool's imports and first-call caches
    base = _rss_mb()
    start = time.perf_counter()
    first = run_tool(model, optimizer, inputs)
    first_s = time.perf_counter() - start
    above = _rss_mb() - base
    count = len(first) if tool == "graphscope step --train" else None
    del first

    def baseline() -> None:
        for _ in range(steps if tool.endswith("N") else 1):
            plain_step(model, optimizer, inputs)

    tool_s, plain_s = timed_pair(lambda: run_tool(model, optimizer, inputs), baseline, repeat)
    return {
        "records": count,
        "first_s": first_s,
        "seconds": tool_s,
        "plain_seconds": plain_s,
        "ratio": tool_s / plain_s,
        "above_mb": above,
        "peak_mb": _rss_mb(),
    }


def origin() -> None:
    """What each tool says about the inf born in SqrtBackward0 (examples/sqrt_grad_torch.py)."""
    import io
    import runpy
    from contextlib import redirect_stderr

    import torch

    from graphscope.stepping import torch_train

    warnings.simplefilter("ignore")
    example = runpy.run_path(str(ROOT / "examples" / "sqrt_grad_torch.py"))
    model, inputs = example["model"], example["example_inputs"]
    steps = torch_train.step_train(model, inputs, name="sqrt_grad_torch")
    culprit = steps.as_dict()["first_nonfinite"]
    keys = ("phase", "node", "op", "born", "grad_of", "source")
    print("graphscope step --train:", json.dumps({k: culprit.get(k) for k in keys}))
    err = io.StringIO()
    try:
        with redirect_stderr(err), torch.autograd.detect_anomaly(check_nan=True):
            model(*inputs).backward()
        said = f"no error; offset.grad = {model.offset.grad.tolist()}"
    except RuntimeError as exc:
        said = f"RuntimeError: {exc}"
    model.zero_grad(set_to_none=True)
    print("detect_anomaly:", said)
    import torchlens
    from torchlens.debug import bisect_nan_backward
    from torchlens.options import CaptureOptions

    trace = torchlens.trace(model, inputs[0], capture=CaptureOptions(save_grads=True, backward_ready=True))
    trace.log_backward(trace[trace.output_layers[-1]].out)
    print("torchlens bisect_nan_backward:", bisect_nan_backward(trace).message.split(". NOTE")[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--models", default="", help="comma-separated words that pick models (gpt,resnet)")
    parser.add_argument("--tools", default="", help="comma-separated tools to run (default: all)")
    parser.add_argument("--origin", action="store_true")
    parser.add_argument(
        "--small", action="store_true", help="the step rows on watch's smaller inputs (a busy machine)"
    )
    parser.add_argument(
        "--pin-malloc",
        action="store_true",
        help="workers run with glibc's trim and mmap thresholds fixed (no memory handed back)",
    )
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "TOOL"))
    args = parser.parse_args()
    if args.origin:
        origin()
        return
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], args.repeat, args.steps)))
        return
    picked = [w.lower() for w in args.models.split(",") if w]
    wanted = [t for t in args.tools.split(",") if t]
    print(
        "| model | tool | records | time (s) | plain (s) | × plain, interleaved | first call (s) "
        "| peak RSS (MB) | above model (MB) | × plain (above) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for models, tools in ((WATCH_MODELS if args.small else MODELS, TOOLS), (WATCH_MODELS, WATCH_TOOLS)):
        for model_key in models:
            if picked and not any(w in model_key.lower() for w in picked):
                continue
            plain_above = None
            for tool in tools:
                if wanted and tool not in wanted and tool not in ("plain step", "plain ×N"):
                    continue
                proc = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--repeat",
                        str(args.repeat),
                        "--steps",
                        str(args.steps),
                        "--worker",
                        model_key,
                        tool,
                    ],
                    capture_output=True,
                    text=True,
                    cwd=ROOT,
                    env={**os.environ, **(PINNED if args.pin_malloc else {})},
                )
                name = tool.replace("N", str(args.steps)) if tool.endswith("N") else tool
                if proc.returncode != 0:
                    last = (proc.stderr.strip().splitlines() or ["?"])[-1]
                    print(f"| {model_key} | {name} | | failed: {last[:100]} | | | | | | |", flush=True)
                    continue
                row = json.loads(proc.stdout.strip().splitlines()[-1])
                if tool.startswith("plain"):
                    plain_above = row["above_mb"]
                mem = row["above_mb"] / plain_above if plain_above else float("nan")
                print(
                    f"| {model_key} | {name} | {row['records'] or ''} | {row['seconds']:.3f} "
                    f"| {row['plain_seconds']:.3f} | {row['ratio']:.2f} | {row['first_s']:.3f} "
                    f"| {row['peak_mb']:.0f} | {row['above_mb']:.0f} | {mem:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
