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


# What the arrays of one file may declare, all together: a 4 MB zip of zeros can declare
# gigabytes, and reading it would fill them out.
MAX_BYTES = 2 << 30


def from_npz(path: Path, fw: str) -> tuple[Any, ...]:
    """The arrays of ``path``, as ``fw``'s models take them (torch: tensors; tf: arrays)."""
    import numpy as np

    try:
        if path.exists() and not path.is_file() and not path.is_dir():
            raise GraphscopeError(f"{path} is not a regular file (a pipe, a socket or a device)")
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise GraphscopeError(
                f"{path} is one array (.npy), not an .npz file: save the inputs with np.savez"
            )
        with data:
            names = list(data.files)
            if names and all(_POSITIONAL.fullmatch(n) for n in names):
                names.sort(key=lambda n: int(n[4:]))
            _check_sizes(path, data, names)
            arrays = [_plain(path, n, data[n], fw) for n in names]
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

        tensors = []
        for name, a in zip(names, arrays):
            try:
                tensors.append(torch.from_numpy(np.ascontiguousarray(a)))
            except (TypeError, RuntimeError):
                raise GraphscopeError(
                    f"{path}: array {name!r} is {a.dtype}, which PyTorch cannot take"
                ) from None
        return tuple(tensors)
    return tuple(arrays)


def _check_sizes(path: Path, data: Any, names: list[str]) -> None:
    """Refuse arrays whose headers declare more than :data:`MAX_BYTES`, before reading any."""
    import numpy as np

    total = 0
    members = set(data.zip.namelist())
    for name in names:
        if f"{name}.npy" not in members:  # np.load would hand back the member's raw bytes
            raise GraphscopeError(f"{path}: {name!r} is not an array (.npy) inside the archive")
        with data.zip.open(f"{name}.npy") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            else:  # 3.0: only for structured fields with non-Latin-1 names, refused anyway
                raise GraphscopeError(f"{path}: array {name!r} is in .npy format {version[0]}.{version[1]}")
        total += int(np.prod(shape, dtype=object)) * dtype.itemsize
        if total > MAX_BYTES:
            raise GraphscopeError(
                f"{path}: its arrays declare more than {MAX_BYTES >> 30} GB ({name!r} is "
                f"{'x'.join(map(str, shape))} {dtype}); graphscope reads at most that"
            )


def _plain(path: Path, name: str, array: Any, fw: str) -> Any:
    """A numeric (or, for TensorFlow, string) array in native byte order; other kinds refused."""
    kinds = "biufc" if fw == "torch" else "biufcSU"
    if array.dtype.kind not in kinds:
        raise GraphscopeError(
            f"{path}: array {name!r} is {array.dtype} ({_KINDS.get(array.dtype.kind, 'not numbers')}); "
            "inputs are arrays of numbers"
        )
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return array


_KINDS = {"V": "structured", "M": "dates", "m": "time spans", "S": "bytes", "U": "text", "O": "objects"}
