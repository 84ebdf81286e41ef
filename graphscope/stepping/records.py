"""What stepping produces: one :class:`Record` per executed node, and :class:`Steps` to walk them.

A record holds summaries (see :mod:`graphscope.stepping.numerics`), never the tensors. The first
non-finite record is where a NaN or an infinity was *born* when it is an op and all of its
inputs (weights included) were finite; otherwise it came in from outside the graph: its
*origin* is the input, weight or variable that already held it. An input, a weight or a
variable read (TensorFlow's ``ReadVariableOp``) is never where a value is born: it was given.
A mask's deliberate -inf is not counted (:mod:`graphscope.stepping.masks`); a NaN it turns into,
or the -inf reaching the output, is, with the mask as its origin. Nor is a value dropped on the way,
one no output holds (:mod:`graphscope.stepping.dropped`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

from graphscope.stepping import dropped as _dropped
from graphscope.stepping import masks as _masks
from graphscope.stepping.numerics import is_finite

if TYPE_CHECKING:
    from graphscope.ir import Graph

__all__ = ["InputKeeper", "Record", "Steps"]

_GIVEN = frozenset({"input", "param", "const"})

# The summary keys stored on an IR node's output next to shape and dtype.
STAT_KEYS = ("min", "max", "mean", "std", "nan", "posinf", "neginf", "zeros")


@dataclass
class Record:
    """One executed node: its identity in the IR and a summary of each of its outputs."""

    index: int  # position in execution order
    node: str  # the IR node id
    op: str
    scope: list[str]
    source: dict[str, Any] | None
    outputs: list[dict[str, Any] | None]  # one summary per output; None where not a tensor
    inputs: list[dict[str, Any] | None] | None = None  # the inputs' summaries, kept when non-finite
    input_nodes: list[str] = field(default_factory=list)
    # inputs that are no node of the graph (the weights inside an fx call_module): name -> kind
    input_kinds: dict[str, str] = field(default_factory=dict)
    kind: str | None = None  # the IR node's kind (input, param, const, op, ...), set by Steps

    @property
    def summary(self) -> dict[str, Any] | None:
        """The first tensor output's summary."""
        return next((s for s in self.outputs if s is not None), None)

    @property
    def finite(self) -> bool:
        return all(is_finite(s) for s in self.outputs)

    @property
    def given(self) -> bool:
        """An input, a weight or a constant (a variable read included): its value was given,
        not computed."""
        return self.kind in _GIVEN

    @property
    def born_here(self) -> bool:
        """Non-finite output of an op from finite inputs: the node where the NaN/Inf appeared."""
        return not self.finite and not self.given and all(is_finite(s) for s in (self.inputs or []))

    @property
    def born(self) -> bool | None:
        """:attr:`born_here` for a non-finite record; None when an op's inputs were not recorded."""
        if self.finite:
            return False
        if self.inputs is None and not self.given:
            return None
        return self.born_here

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "step": self.index,
            "node": self.node,
            "op": self.op,
            "scope": self.scope,
            "source": self.source,
            "summary": self.summary,
        }
        if len(self.outputs) > 1:
            doc["outputs"] = self.outputs
        if self.inputs is not None:
            doc["inputs"] = [
                {"node": n, "summary": s} for n, s in zip(self.input_nodes, self.inputs, strict=False)
            ]
        return doc


class InputKeeper:
    """Which records keep their inputs' summaries (to tell born from inherited): every
    non-finite one up to the :data:`NAN_RECORDS`-th that holds a NaN. A mask's deliberate -inf
    (:mod:`graphscope.stepping.masks`) and a value dropped on the way
    (:mod:`graphscope.stepping.dropped`) come before the value that counts; past a few NaN
    records the culprit is among them (a NaN spreads), and keeping every later record's inputs
    would only cost time."""

    NAN_RECORDS = 64

    def __init__(self) -> None:
        self.nan_records = 0

    def __call__(self, outputs: Sequence[dict[str, Any] | None]) -> bool:
        if self.nan_records >= self.NAN_RECORDS or all(is_finite(s) for s in outputs):
            return False
        self.nan_records += any(s is not None and s.get("nan") for s in outputs)
        return True


class Steps(Sequence[Record]):
    """The records of one run, in execution order, with a cursor to walk them.

    >>> steps = graphscope.stepping(model, inputs)            # doctest: +SKIP
    >>> steps.first_nonfinite.node                        # doctest: +SKIP
    'log_1'
    >>> steps.seek("log_1"); steps.back().node            # doctest: +SKIP
    'sub'
    """

    def __init__(self, graph: Graph, records: list[Record], notes: Sequence[str] = ()) -> None:
        self.graph = graph
        self.records = records
        self.notes = list(notes)
        self.position = 0
        self.values: dict[str, list[Any]] = {}  # node id -> whole outputs, for the nodes asked to keep
        self._by_node = {r.node: r for r in records}
        self._masks: _masks.Masks | None = None  # decided on first use, over the whole run
        self._dropped: dict[str, list[str]] | None = None  # likewise
        for r in records:
            if r.kind is None and r.node in graph:
                r.kind = graph.node(r.node)["kind"]

    # -- Sequence ---------------------------------------------------------------------------

    @overload
    def __getitem__(self, i: int) -> Record: ...
    @overload
    def __getitem__(self, i: slice) -> list[Record]: ...
    def __getitem__(self, i: int | slice) -> Record | list[Record]:
        return self.records[i]

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __repr__(self) -> str:
        bad = self.first_nonfinite
        where = f", first non-finite at {bad.node!r}" if bad else ", all finite"
        return f"<Steps of {self.graph.name!r}: {len(self.records)} records{where}>"

    def _repr_html_(self) -> str:
        """Jupyter shows the step table and the verdict, as `graphscope step` prints them."""
        from graphscope.notebook import steps_html

        return steps_html(self)

    # -- finding ----------------------------------------------------------------------------

    def record(self, node_id: str) -> Record | None:
        return self._by_node.get(node_id)

    @property
    def masks(self) -> _masks.Masks:
        """Which infinities are a mask's, not counted (:mod:`graphscope.stepping.masks`)."""
        if self._masks is None:
            self._masks = _masks.find(self.records, self.graph)
        return self._masks

    @property
    def dropped_nodes(self) -> dict[str, list[str]]:
        """Non-finite records no output holds -> the records that made them finite again
        (:mod:`graphscope.stepping.dropped`)."""
        if self._dropped is None:
            self._dropped = _dropped.find(self.records, self.graph)
        return self._dropped

    def counts(self, rec: Record) -> bool:
        """Does ``rec`` hold a non-finite value that counts: a NaN or an infinity that no mask
        explains and that reaches an output?"""
        return self.masks.counts(rec) and rec.node not in self.dropped_nodes

    @property
    def first_nonfinite(self) -> Record | None:
        """The first record whose non-finite value counts: a mask's -inf and a value dropped on
        the way are skipped."""
        return next((r for r in self.records if self.counts(r)), None)

    def dropped(self) -> dict[str, Any] | None:
        """What was skipped as dropped on the way (a mask's -inf aside, said by :meth:`masked`):
        ``{"values", "nan", "posinf", "neginf", "nodes", "first": {"node", "op", "source"},
        "absorbed_by"}`` (the records that made the first one finite again), or None."""
        found = self.dropped_nodes
        records = [r for r in self.records if r.node in found and r.node not in self.masks.masked]
        if not records:
            return None
        counts = {
            key: sum(s.get(key, 0) for r in records for s in r.outputs if s)
            for key in ("nan", "posinf", "neginf")
        }
        first = records[0]
        order = {r.node: r.index for r in self.records}
        return {
            "values": sum(counts.values()),
            **counts,
            "nodes": len(records),
            "first": {"node": first.node, "op": first.op, "source": first.source},
            "absorbed_by": sorted(found[first.node], key=lambda n: order.get(n, -1)),
        }

    def masked(self) -> dict[str, Any] | None:
        """What was skipped as a mask's -inf among these records: ``{"values", "nodes", "sign",
        "first": {"node", "op", "source"}}`` (the first mask source, with the first source line
        along its chain: a TensorFlow ``Const`` has none, the op reading it has), or None."""
        masked = [r for r in self.records if r.node in self.masks.masked]
        if not masked:
            return None
        pos = sum(s.get("posinf", 0) for r in masked for s in r.outputs if s)
        neg = sum(s.get("neginf", 0) for r in masked for s in r.outputs if s)
        first = self.record(self.masks.masked[masked[0].node]) or masked[0]
        return {
            "values": pos + neg,
            "nodes": len(masked),
            "sign": "-inf" if not pos else ("+inf" if not neg else "±inf"),
            "first": {"node": first.node, "op": first.op, "source": self.mask_line(first.node)},
        }

    def mask_line(self, source: str) -> dict[str, Any] | None:
        """The source line of a mask: its source record's, else the first record's it flows into."""
        for r in self.records:
            if r.source and (r.node == source or self.masks.masked.get(r.node) == source):
                return r.source
        return None

    def origin(self, rec: Record) -> dict[str, Any] | None:
        """Where a non-finite value that was not born at ``rec`` came from: ``{"node", "kind",
        "name"}`` of the input, weight or variable that held it (``rec`` itself when it is one;
        ``node`` is None for a weight that is no node of the graph, inside an fx call_module).
        None when it was born at ``rec``, or when nothing recorded says. A value made from a
        mask's -inf has the mask's source as origin, with ``"mask": true``, its ``source`` line
        and the ``chain`` of nodes from the mask to ``rec``'s input."""
        if rec.finite or rec.born is not False:
            return None
        mask = self.masks.reached.get(rec.node)
        if mask is not None:
            return {
                **self._described(mask),
                "mask": True,
                "source": self.mask_line(mask),
                "chain": self._chain(rec),
            }
        if rec.given:
            # A variable read (ReadVariableOp): the variable it reads is the origin.
            handles = [
                n for n in rec.input_nodes if n in self.graph and self.graph.node(n)["kind"] == "param"
            ]
            return self._described(handles[0] if len(handles) == 1 else rec.node)
        for node, summary in zip(rec.input_nodes, rec.inputs or [], strict=False):
            if not is_finite(summary):
                if node in rec.input_kinds:
                    return {"node": None, "kind": rec.input_kinds[node], "name": node}
                return self._described(node)
        return None

    def _chain(self, rec: Record) -> list[str]:
        """The masked nodes from the mask's source to ``rec``'s masked input, in order."""
        masked = self.masks.masked
        chain: list[str] = []
        current = rec
        while True:
            step = next(
                (
                    n
                    for n, s in zip(current.input_nodes, current.inputs or [], strict=False)
                    if not is_finite(s) and n in masked and n not in chain
                ),
                None,
            )
            if step is None:
                break
            chain.append(step)
            found = self.record(step)
            if masked[step] == step or found is None:
                break
            current = found
        return chain[::-1]

    def phase_of(self, rec: Record) -> dict[str, Any]:
        """``phase`` (forward, backward, optimizer) and, for a gradient, ``grad_of``: the forward
        node it differentiates, with that node's op and source line (the user's code)."""
        if rec.node not in self.graph:
            return {"phase": "forward"}
        node = self.graph.node(rec.node)
        doc: dict[str, Any] = {"phase": node.get("phase") or "forward"}
        forward = node.get("grad_of")
        if doc["phase"] == "backward" and forward is not None and forward in self.graph:
            fwd = self.graph.node(forward)
            doc["grad_of"] = {"node": forward, "op": fwd["op"], "source": fwd["source"]}
        return doc

    def _described(self, node_id: str) -> dict[str, Any]:
        if node_id not in self.graph:
            return {"node": node_id, "kind": None, "name": node_id}
        node = self.graph.node(node_id)
        return {"node": node_id, "kind": node["kind"], "name": node["name"]}

    def until(self, stop: str | None) -> Steps:
        """The records up to and including ``stop``: ``"nonfinite"``, a node id, or None (all)."""
        if stop is None:
            return self
        if stop == "nonfinite":
            bad = self.first_nonfinite
            end = bad.index + 1 if bad else len(self.records)
        else:
            rec = self._by_node.get(stop)
            if rec is None:
                from graphscope.errors import GraphscopeError

                raise GraphscopeError(_no_such_step(stop, self))
            end = rec.index + 1
        cut = Steps(self.graph, self.records[:end], self.notes)
        cut._masks = self.masks  # whether a mask's -inf is absorbed is decided over the whole run
        cut._dropped = self.dropped_nodes  # and whether a value reaches an output
        cut.position = min(self.position, max(end - 1, 0))
        return cut

    # -- walking ----------------------------------------------------------------------------

    @property
    def current(self) -> Record | None:
        return self.records[self.position] if self.records else None

    def forward(self, n: int = 1) -> Record | None:
        if self.records:
            self.position = min(self.position + n, len(self.records) - 1)
        return self.current

    def back(self, n: int = 1) -> Record | None:
        self.position = max(self.position - n, 0)
        return self.current

    def seek(self, node_id: str) -> Record:
        rec = self._by_node.get(node_id)
        if rec is None:
            from graphscope.errors import GraphscopeError

            raise GraphscopeError(_no_such_step(node_id, self))
        self.position = rec.index
        return rec

    # -- the IR -----------------------------------------------------------------------------

    def attach(self) -> Graph:
        """Store each record's stats on its IR node's outputs (``outputs[i]["stats"]``)."""
        for rec in self.records:
            if rec.node not in self.graph:
                continue
            outs = self.graph.node(rec.node)["outputs"]
            for i, summary in enumerate(rec.outputs):
                if summary is None:
                    continue
                stats = {k: summary[k] for k in STAT_KEYS}
                if i < len(outs):
                    outs[i]["stats"] = stats
                    if outs[i].get("shape") is None or None in (outs[i].get("shape") or []):
                        outs[i]["shape"] = summary["shape"]  # the run knows the real shape
                else:
                    outs.append({"shape": summary["shape"], "dtype": summary["dtype"], "stats": stats})
        return self.graph

    def as_dict(self) -> dict[str, Any]:
        bad = self.first_nonfinite
        culprit = None
        if bad is not None:
            culprit = bad.as_dict()
            culprit["born"] = bad.born
            if bad.born is False:
                culprit["origin"] = self.origin(bad)
            culprit.update(self.phase_of(bad))
            culprit["through_backward"] = _dropped.through_backward(bad, self.records, self.graph)
        doc: dict[str, Any] = {
            "graph": self.graph.name,
            "capture": self.graph.capture,
            "steps": [r.as_dict() for r in self.records],
            "first_nonfinite": culprit,
            "masked": self.masked(),
            "dropped": self.dropped(),
            "notes": self.notes,
        }
        updates = [
            {
                "node": r.node,
                "parameter": node["name"],
                "update_to_weight": node["attrs"].get("update_to_weight"),
            }
            for r in self.records
            if r.node in self.graph and (node := self.graph.node(r.node)).get("phase") == "optimizer"
        ]
        if updates:  # a training step with an optimizer: how far each parameter moved
            doc["updates"] = updates
        return doc


def _no_such_step(node_id: str, steps: Steps) -> str:
    if node_id in steps.graph:
        return f"node {node_id!r} is in the graph but did not run on this input"
    return f"no node {node_id!r} in {steps.graph.name!r}; `graphscope trace` lists the node ids"
