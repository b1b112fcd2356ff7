"""Files and grids shared by both halves: atomic ``.npz`` and netCDF writing, validated
reading, alpha grids (numbers or START:STOP:STEP ranges)."""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from .errors import InputError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["output_path", "atomic_savez", "atomic_write_text", "load_npz", "json_ready", "parse_number", "number_arg",
           "integer_arg", "parse_alpha_grid", "NETCDF_ENGINE", "write_netcdf", "load_netcdf",
           "package_version", "provenance"]


def _atomic_replace(path: Path, write) -> Path:
    """Call ``write(tmp)`` on a temporary file in ``path``'s folder, fsync it, then
    ``os.replace`` it onto ``path`` and fsync the folder. A crash leaves the old file or
    the new one, never a mix; the temporary file is removed on any error."""
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # an ordinary file, not mkstemp's 0600
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (power loss)
        dirfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)
    return path


def output_path(path: str | os.PathLike, what: str = "output", suffix: str | None = None) -> Path:
    """Check, before any computing, that a command can write its result to ``path``.

    Returns the path that will actually be written: with ``suffix`` (e.g. ".npz") appended
    when ``path`` lacks it, as numpy does. Raises InputError (one line, naming ``what``) when
    the folder does not exist (it is not created silently), is not a folder, is not
    writable, or when ``path`` is itself a folder.
    """
    out = Path(path)
    if suffix is not None and out.suffix != suffix:
        out = out.with_name(out.name + suffix)
    if out.is_dir():
        raise InputError(f"{what} {str(path)!r} is a folder, not a file name")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.exists():
        raise InputError(f"{what}: folder {str(folder)!r} does not exist (create it first)")
    if not folder.is_dir():
        raise InputError(f"{what}: {str(folder)!r} is not a folder")
    try:  # the real test: a temporary file where the atomic writer will put its own
        fd, probe = tempfile.mkstemp(prefix=out.name + ".", suffix=".probe", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"{what}: cannot write in {str(folder)!r} ({exc.strerror or exc})") from None
    if out.exists() and not os.access(out, os.W_OK):
        raise InputError(f"{what}: cannot write {str(out)!r} (permission denied)")
    return out


def atomic_savez(path: str | os.PathLike, **arrays) -> Path:
    """Write ``arrays`` to ``path`` (.npz, folder created if needed) atomically.

    Library and benchmark writers rely on the folder being made; commands check their
    output with :func:`output_path` first, which refuses a missing folder."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp):
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    return _atomic_replace(path, write)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` (folder created if needed) atomically (a JSON report, a table)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    return _atomic_replace(path, write)


def load_npz(path: str | os.PathLike, required: tuple[str, ...] = (), kind: str = "file") -> dict:
    """Read an ``.npz`` into a dict of arrays; missing or malformed files and missing
    keys raise :class:`InputError` with a one-line message."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{kind} {str(path)!r} is a folder, not a file")
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


def json_ready(value: Any) -> Any:
    """``value`` with non-finite floats replaced by None, recursively through dicts (JSON has
    no inf/NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------- alpha grids
def parse_number(text: str, what: str) -> float:
    """``float(text)``, finite, else InputError naming ``what``."""
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{what}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{what}: {text!r} is not finite")
    return value


def number_arg(text: str) -> float:
    """argparse ``type=`` for a finite number: a one-line usage error otherwise."""
    try:
        return parse_number(text, "expected a finite number")
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def integer_arg(name: str) -> Callable[[str], int]:
    """argparse ``type=`` for an integer option called ``name``: a one-line usage error otherwise."""
    def parse(text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
    parse.__name__ = name
    return parse


def parse_alpha_grid(tokens: Sequence[str] | str, max_values: int = 100_000) -> tuple[float, ...]:
    """Alpha values from tokens that are numbers or inclusive ranges START:STOP:STEP.

    ``"3:10:0.5"`` gives 3, 3.5, ..., 10 (STOP included when it lies on the grid, up to
    1e-9 relative rounding). Values are rounded to 9 decimals, sorted and deduplicated.

    Raises
    ------
    InputError
        Malformed token, STEP <= 0, STOP < START, alpha <= 0, values closer than 1e-6,
        or more than ``max_values`` values.
    """
    if isinstance(tokens, str):
        tokens = [tokens]
    values: list[float] = []
    for tok in tokens:
        parts = str(tok).split(":")
        if len(parts) == 1:
            values.append(parse_number(parts[0], "alpha"))
            continue
        if len(parts) != 3:
            raise InputError(f"alpha range {tok!r} is malformed; use START:STOP:STEP, e.g. 3:10:0.5")
        start, stop, step = (parse_number(p, f"alpha range {tok!r}") for p in parts)
        if step <= 0:
            raise InputError(f"alpha range {tok!r}: STEP must be > 0")
        if stop < start:
            raise InputError(f"alpha range {tok!r}: STOP must be >= START")
        count = int(math.floor((stop - start) / step * (1 + 1e-9) + 1e-9)) + 1
        if count > max_values:
            raise InputError(f"alpha range {tok!r} has {count} values (at most {max_values})")
        values.extend(start + k * step for k in range(count))
    grid = sorted({round(v, 9) for v in values})
    if not grid:
        raise InputError("no alpha value given")
    if grid[0] <= 0:
        raise InputError(f"alpha must be > 0, got {grid[0]:g}")
    if len(grid) > 1 and min(np.diff(grid)) < 1e-6:
        raise InputError("alpha values must differ by at least 1e-6")
    return tuple(grid)


# ---------------------------------------------------------------------------- netCDF
NETCDF_ENGINE = "h5netcdf"


def write_netcdf(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write an xarray Dataset to ``path`` atomically (the folder must exist)."""
    path = Path(path)
    if not path.parent.resolve().is_dir():
        raise InputError(f"cannot write {str(path)!r}: its folder does not exist")
    return _atomic_replace(path, lambda tmp: ds.to_netcdf(tmp, engine=NETCDF_ENGINE))


def load_netcdf(path: str | os.PathLike, kind: str = "netCDF file") -> xr.Dataset:
    """Read a netCDF file fully into memory; missing or unreadable files raise InputError."""
    import xarray as xr

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{kind} {str(path)!r} does not exist")
    try:
        return xr.load_dataset(path, engine=NETCDF_ENGINE)
    except Exception as exc:  # h5py/h5netcdf raise a variety of types on garbage
        raise InputError(f"{kind} {str(path)!r} is not a readable netCDF file ({type(exc).__name__})") from None


# ---------------------------------------------------------------------------- provenance
def package_version() -> str:
    """Installed version of phaseflow ("unknown" when run from a source tree not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("phaseflow")
    except PackageNotFoundError:
        return "unknown"


def provenance(**parameters) -> dict:
    """Attributes that make a result file self-describing: package version, creation time
    (UTC, ISO 8601) and the parameters given (seed, estimator, ...), JSON-ready.

    Meant for xarray ``Dataset.attrs`` (netCDF attributes must be numbers or strings:
    None becomes "none", booleans 0/1, sequences are kept as lists of numbers or strings).
    """
    import datetime

    out = {"package_version": package_version(),
           "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    for key, value in parameters.items():
        value = json_ready(value)
        if value is None:
            value = "none"
        elif isinstance(value, bool):
            value = int(value)
        elif isinstance(value, dict):
            import json as _json

            value = _json.dumps(value, sort_keys=True)
        out[key] = value
    return out
