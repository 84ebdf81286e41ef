"""A long fuzz run over the targets of tests/fuzz_targets.py, for minutes instead of seconds.

    .venv/bin/python bench/fuzz.py --minutes 5 [--targets json,svg,graphdef,onnx,torchscript,iograph,text]

Targets: ``json`` (the saved-graph loader, on arbitrary and mutated IR documents and bytes),
``svg`` (DOT/SVG escaping of arbitrary unicode names, one ``dot`` run per input), ``graphdef``
(binary and text GraphDefs, mutated), ``onnx`` (ONNX models, mutated), ``torchscript`` (scripted
modules with arbitrary attribute names and string constants: the printed-graph reader must read
them as pybind does, or give way), ``iograph`` (GraphDefs built of ReadFile, MatchingFiles,
DecodeRaw and shape ops, beside a secret file: its bytes must not reach the IR, since importing
runs nothing), ``text`` (node ids of arbitrary text: ``info --json`` escapes every terminal
control, shell completion offers only plain words, one a line). Each input must give a
result or a GraphscopeError; anything else is a failure. The time is split evenly between the
targets, each run in a worker process of its own (so that a crash in C++ code, TensorFlow's or
onnx's, is reported as a crash with the input that caused it rather than ending the run).
Hypothesis draws new random inputs in rounds until the target's time is up; each failure is
shrunk, and its smallest input saved under bench/fuzz_failures/ (not committed).

Prints, per target, the inputs tried and the distinct failures found.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FAILURES = ROOT / "bench" / "fuzz_failures"
TARGETS = ("json", "svg", "graphdef", "onnx", "torchscript", "iograph", "text")
# Inputs per hypothesis round: a round is a few seconds (svg: one `dot` run per input).
ROUND = {"json": 400, "svg": 8, "graphdef": 60, "onnx": 150, "torchscript": 20, "iograph": 60, "text": 100}


def _target(name: str) -> tuple[Any, Callable[[Any], Any], bool]:
    """(strategy, function, native) for a target; native ones run C++ code that could crash."""
    from hypothesis import strategies as st

    from tests import fuzz_targets as ft

    if name == "json":
        return ft.json_inputs, ft.json_target, False
    if name == "svg":
        return st.lists(ft.names, min_size=1, max_size=12), ft.svg_target, False
    if name == "graphdef":
        binary, text = ft.graph_def_seed()
        inputs = st.tuples(st.just(".pb"), ft.mutated_bytes(binary)) | st.tuples(
            st.just(".pbtxt"), ft.mutated_bytes(text)
        )
        return inputs, lambda pair: ft.file_target(pair[1], pair[0]), True
    if name == "onnx":
        return (
            ft.mutated_bytes(ft.onnx_seed()).map(lambda b: (".onnx", b)),
            lambda p: ft.file_target(p[1], p[0]),
            True,
        )
    if name == "torchscript":
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="graphscope-fuzz-"))
        inputs = st.tuples(ft.module_keys, st.lists(st.text(max_size=40), min_size=3, max_size=3))
        return inputs, lambda pair: ft.scripted_text_target(folder, *pair), True
    if name == "iograph":
        import tempfile

        secret = Path(tempfile.mkdtemp(prefix="graphscope-fuzz-")) / "secret.bin"
        secret.write_bytes(ft.IO_SECRET)
        return ft.io_graph_defs(), lambda recipe: ft.io_graph_def_target(recipe, str(secret)), True
    if name == "text":
        return st.lists(ft.names, min_size=1, max_size=8), ft.text_outputs_target, False
    raise SystemExit(f"unknown target {name!r}; targets: {', '.join(TARGETS)}")


def worker(name: str, seconds: float, current: Path) -> dict[str, Any]:
    """Fuzz one target for ``seconds``; returns what it tried and the failures it found."""
    from hypothesis import HealthCheck, given, settings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    strategy, function, native = _target(name)
    tried = 0
    failures: dict[str, dict[str, Any]] = {}
    last_input: list[Any] = [None]

    def run_one(value: Any) -> None:
        nonlocal tried
        tried += 1
        last_input[0] = value
        if native:  # written first: if C++ code crashes the process, the parent reads it
            current.write_bytes(repr(value).encode("utf-8", "backslashreplace"))
        function(value)

    deadline = time.monotonic() + seconds
    rounds = 0
    while time.monotonic() < deadline:
        rounds += 1
        test = settings(
            max_examples=ROUND[name],
            deadline=None,
            database=None,
            derandomize=False,
            report_multiple_bugs=False,
            suppress_health_check=list(HealthCheck),
        )(given(strategy)(run_one))
        try:
            test()
        except Exception as exc:  # the shrunk failure: hypothesis re-raises its exception
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            key = f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}"
            if key not in failures:
                FAILURES.mkdir(exist_ok=True)
                saved = FAILURES / f"{name}-{len(failures)}.txt"
                saved.write_text(
                    f"{key}: {exc}\n\ninput: {last_input[0]!r}\n\n{''.join(traceback.format_exception(exc))}"
                )
                failures[key] = {"message": str(exc)[:300], "input_file": str(saved.relative_to(ROOT))}
    return {"target": name, "tried": tried, "rounds": rounds, "failures": failures}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=5.0, help="Total time, split between the targets.")
    parser.add_argument("--targets", default=",".join(TARGETS), help="Comma-separated targets.")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--current", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.seconds, Path(args.current))))
        return

    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    share = args.minutes * 60 / len(targets)
    print(f"fuzzing {', '.join(targets)} for {args.minutes:g} min ({share:.0f} s each)", flush=True)
    results = []
    for name in targets:
        current = FAILURES.parent / f".fuzz-{name}.current"
        start = time.monotonic()
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", name, "--seconds", str(share), "--current", str(current)],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        elapsed = time.monotonic() - start
        if proc.returncode == 0 and proc.stdout.strip():
            result = json.loads(proc.stdout.strip().splitlines()[-1])
        else:  # the worker died: a crash in native code (or a bug in this script)
            FAILURES.mkdir(exist_ok=True)
            saved = FAILURES / f"{name}-crash.txt"
            last = current.read_text() if current.exists() else "?"
            saved.write_text(
                f"exit code {proc.returncode}\n\ninput: {last}\n\nstderr:\n{proc.stderr[-5000:]}"
            )
            result = {
                "target": name,
                "tried": None,
                "rounds": None,
                "failures": {f"process died (exit code {proc.returncode})": {"input_file": str(saved)}},
            }
        current.unlink(missing_ok=True)
        result["seconds"] = round(elapsed)
        results.append(result)
        tried = "?" if result["tried"] is None else f"{result['tried']:,}"
        print(
            f"  {name:9s} {tried:>9s} inputs in {elapsed:4.0f} s   {len(result['failures'])} failure(s)",
            flush=True,
        )
        for key, info in result["failures"].items():
            print(f"      {key}: {info.get('message', '')[:160]}  ({info['input_file']})", flush=True)
    total = sum(r["tried"] or 0 for r in results)
    found = sum(len(r["failures"]) for r in results)
    print(f"total: {total:,} inputs, {found} distinct failure(s)")


if __name__ == "__main__":
    main()
