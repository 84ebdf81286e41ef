"""Input values for a run from an ``.npz`` file (``step --inputs``): a SavedModel has no model
file to hold ``example_inputs``, and real data finds what random inputs do not.

Arrays are taken in the file's order (``np.savez(path, x, mask)`` writes ``arr_0``, ``arr_1``;
``np.savez(path, x=..., mask=...)`` keeps the keywords' order), one per model input. Read with
``allow_pickle=False``: an object array is refused, never unpickled.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

from graphscope.errors import GraphscopeError, first_line

_POSITIONAL = re.compile(r"arr_(\d+)")


def from_npz(path: Path, fw: str) -> tuple[Any, ...]:
    """The arrays of ``path``, as ``fw``'s models take them (torch: tensors; tf: arrays)."""
    import numpy as np

    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise GraphscopeError(
                f"{path} is one array (.npy), not an .npz file: save the inputs with np.savez"
            )
        with data:
            names = list(data.files)
            if names and all(_POSITIONAL.fullmatch(n) for n in names):
                names.sort(key=lambda n: int(n[4:]))
            arrays = [data[n] for n in names]
    except GraphscopeError:
        raise
    except FileNotFoundError:
        raise GraphscopeError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise GraphscopeError(f"{path} is a directory, not an .npz file of inputs") from None
    except ValueError as exc:  # an object array: it would need unpickling
        raise GraphscopeError(f"{path}: {first_line(exc)} (inputs are plain arrays)") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise GraphscopeError(f"{path} is not an .npz file of arrays (np.savez): {first_line(exc)}") from None
    if not arrays:
        raise GraphscopeError(f"{path} holds no arrays")
    if fw == "torch":
        import torch

        return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays)
    return tuple(arrays)
