"""--save-values writes plain arrays only: nothing in values.npz needs pickle to be read."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from graphscope.stepping import values


def test_object_arrays_are_saved_without_pickle(tmp_path: Path) -> None:
    steps = SimpleNamespace(graph=SimpleNamespace(name="g"), record=lambda node_id: None)
    strings = np.array(["a", "bb", None], dtype=object)  # what a TF string tensor gives
    numbers = np.arange(3, dtype=np.float32)
    values.save(steps, {"s": [strings], "n": [numbers]}, tmp_path)  # type: ignore[arg-type]
    with np.load(tmp_path / "values.npz", allow_pickle=False) as npz:
        assert npz["v00000"].tolist() == [b"a", b"bb", b"None"]
        assert npz["v00001"].tolist() == [0.0, 1.0, 2.0]
