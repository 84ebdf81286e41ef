"""Which PyTorch capture method: the default falls back, and a refusal names what can work.

With no ``--method``, ``export`` is tried first and, when it refuses the model, the next method
that can: ``dynamo``, ``jit-trace``, then ``eager`` (which records whatever ran). The graph's
notes say which method captured it and why export could not. With ``--method``, nothing else is
captured in its place; but its refusal names a method that does capture the model (found by
trying the others in the same order), never one that would fail too.

A model that raises on its own example inputs fails the same way under every method: that is
said as the model's error, at its line, not as a capture method's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from graphscope.errors import CaptureError, GraphscopeError

if TYPE_CHECKING:
    from graphscope.ir import Graph

__all__ = ["FALLBACK_ORDER", "capture_with_fallback", "check_model_runs", "hint"]

# The default first; eager last, since it keeps only what one run executed.
FALLBACK_ORDER = ("export", "dynamo", "jit-trace", "eager")

Capture = Callable[[str], "Graph"]


def capture_with_fallback(capture: Capture, model: Any, example_inputs: Any, *, method: str | None) -> Graph:
    """``capture(method)``, falling back (default method) or naming what works (``--method``)."""
    from graphscope.tracers import _meta

    _meta.check_devices(model, example_inputs)
    asked = method or FALLBACK_ORDER[0]
    try:
        return capture(asked)
    except CaptureError as exc:
        refusal = exc  # the name bound by `except` is cleared when the block ends
    check_model_runs(model, example_inputs)
    failed = {asked: refusal}
    if method is not None:
        raise _with_hint(refusal, capture, failed) from None
    for candidate in FALLBACK_ORDER[1:]:
        try:
            graph = capture(candidate)
        except CaptureError as exc:
            failed[candidate] = exc
            continue
        graph.notes.insert(0, f"captured with {candidate}: {_without_period(refusal)}")
        return graph
    tried = ", ".join(m for m in FALLBACK_ORDER[1:])
    raise GraphscopeError(f"{_without_period(refusal)}; {tried} could not capture it either") from None


def check_model_runs(model: Any, example_inputs: Any) -> None:
    """Raise the model's own error when it raises on its example inputs (run once, eagerly)."""
    from graphscope.tracers import _meta
    from graphscope.tracers import _torch_common as common

    torch = common.require_torch()
    if not callable(model) or example_inputs is None or _meta.is_meta(model, example_inputs):
        return  # on the meta device, eager code may fail (.item()) where a capture does not
    module = model if isinstance(model, torch.nn.Module) else None
    with common.model_left_untouched(module), common.quiet_torch_logs(), torch.no_grad():
        try:
            model(*example_inputs)
        except Exception as exc:
            raise common.model_raised(exc) from None


def _with_hint(refusal: CaptureError, capture: Capture, failed: dict[str, CaptureError]) -> GraphscopeError:
    return hint(refusal, capture, [m for m in FALLBACK_ORDER if m not in failed])


def hint(refusal: CaptureError, capture: Capture, candidates: Iterable[str]) -> GraphscopeError:
    """``refusal`` with the first of ``candidates`` that captures the model (tried in order),
    or with the news that none could."""
    for candidate in candidates:
        try:
            capture(candidate)
        except CaptureError:
            continue
        return GraphscopeError(f"{_without_period(refusal)}; --method {candidate} captures it")
    return GraphscopeError(f"{_without_period(refusal)}; no other method could capture it either")


def _without_period(exc: BaseException) -> str:
    return str(exc).rstrip(". ")
