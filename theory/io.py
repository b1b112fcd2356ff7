"""Atomic ``.npz`` writing and validated reading, shared by state and measure files."""
from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .errors import InputError


def atomic_savez(path: str | os.PathLike, **arrays) -> Path:
    """Write ``arrays`` to ``path`` (.npz) atomically: a temporary file in the same
    folder, fsync, then ``os.replace``. A crash leaves the old file or the new one."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_npz(path: str | os.PathLike, required: tuple[str, ...] = (), kind: str = "file") -> dict:
    """Read an ``.npz`` into a dict of arrays; missing or malformed files and missing
    keys raise :class:`InputError` with a one-line message."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{kind} {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            out = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"{kind} {str(path)!r} is not a readable .npz file ({type(exc).__name__})") from None
    missing = [k for k in required if k not in out]
    if missing:
        raise InputError(f"{kind} {str(path)!r} lacks the arrays {missing}")
    return out
