"""Atomic writing: every output appears whole or not at all."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, cast

import nibabel as nib
import numpy as np
import numpy.typing as npt

from neurospine.errors import GeometryError, InputError
from neurospine.io.volume import Volume

#: Output path meaning "standard output" for every file writer (tables, CSVs, label lists).
STDOUT = "-"


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    ``"-"`` writes to standard output. A target that is not a regular file (a device such as ``/dev/null``,
    a FIFO, ``/dev/stdout``) is never replaced: the finished file is copied into it (written through). A
    symlink to a regular file keeps its link: the file it points to is replaced atomically. A folder is refused.
    """
    if str(path) == STDOUT:
        with _written_through(Path("stdout"), _stdout_binary) as tmp:
            yield tmp
        return
    target = Path(path)
    special = _special_target(target)
    if special is not None:
        with _written_through(target, special) as tmp:
            yield tmp
        return
    if target.is_symlink():  # a link to a regular file (or a dangling one): replace what it points to
        target = Path(os.path.realpath(target))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # keep the full suffix (.nii.gz) so writers choose the right format
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{_suffix(target)}", dir=target.parent)
    except OSError as e:
        raise _write_error(target, e) from e
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; outputs get the usual permissions
    try:
        yield tmp
        try:
            os.replace(tmp, target)
        except OSError as e:
            raise _write_error(target, e) from e
    finally:
        if tmp.exists():
            tmp.unlink()


def writes_to_stdout(path: str | Path | None) -> bool:
    """True when writing ``path`` ends up on standard output (``-``, ``/dev/stdout``, ``/proc/self/fd/1``)."""
    if path is None:
        return False
    if str(path) == STDOUT:
        return True
    try:
        return _special_target(Path(path)) is _stdout_binary
    except InputError:
        return False


def _suffix(target: Path) -> str:
    return "".join(target.suffixes[-2:]) if target.name.endswith(".nii.gz") else target.suffix


def _write_error(target: Path, e: OSError) -> InputError:
    why = e.strerror or str(e)
    if target.is_dir():
        return InputError(target, "is a folder, not a file", "give a file name (or - for standard output)")
    return InputError(target, f"cannot write here ({why})", "choose a location you can write to")


def _stdout_binary() -> BinaryIO:
    sys.stdout.flush()
    return cast(BinaryIO, sys.stdout.buffer)


def _stderr_binary() -> BinaryIO:
    sys.stderr.flush()
    return cast(BinaryIO, sys.stderr.buffer)


def _same_file(st: os.stat_result, fd: int) -> bool:
    try:
        other = os.fstat(fd)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (other.st_dev, other.st_ino)


def _special_target(target: Path) -> Callable[[], BinaryIO] | None:
    """How to write through to ``target`` when it must not be replaced (None: an ordinary file or a new one)."""
    if not os.path.lexists(target):
        return None
    is_link = target.is_symlink()
    try:
        st = os.stat(target)
    except OSError:
        return None  # a dangling link: write the file it names
    if not is_link and stat.S_ISREG(st.st_mode):
        return None
    if _same_file(st, 1):  # /dev/stdout, /proc/self/fd/1, or a link to where stdout goes
        return _stdout_binary
    if _same_file(st, 2):
        return _stderr_binary
    if stat.S_ISREG(st.st_mode):
        return None  # a link to a regular file
    if stat.S_ISDIR(st.st_mode):
        raise InputError(target, "is a folder, not a file", "give a file name (or - for standard output)")

    def opened() -> BinaryIO:
        try:
            return open(target, "wb")
        except OSError as e:
            raise _write_error(target, e) from e

    return opened


@contextlib.contextmanager
def _written_through(target: Path, open_target: Callable[[], BinaryIO]) -> Iterator[Path]:
    """Let the writer fill a private temporary file, then copy it into ``target`` (a stream or a device)."""
    fd, tmp_name = tempfile.mkstemp(prefix="neurospine-", suffix=f".tmp{_suffix(target)}")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        dest = open_target()
        try:
            with tmp.open("rb") as src:
                shutil.copyfileobj(src, dest)
            dest.flush()
        finally:
            if dest not in (getattr(sys.stdout, "buffer", None), getattr(sys.stderr, "buffer", None)):
                dest.close()
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; ``"-"`` writes it to standard output."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def save_volume(vol: Volume, path: str | Path, *, dtype: npt.DTypeLike | None = None, is_label: bool = False) -> Path:
    """Write ``vol`` as NIfTI with its exact affine (qform and sform both set)."""
    data = np.asarray(vol.data)
    if dtype is not None:
        data = data.astype(dtype)
    elif data.dtype == np.bool_:
        data = data.astype(np.uint8)
    elif data.dtype in (np.int64, np.uint64):
        data = data.astype(label_dtype(data))
    img = nib.Nifti1Image(data, vol.affine)
    img.set_qform(vol.affine, code=1)
    img.set_sform(vol.affine, code=1)
    if is_label:
        img.header.set_intent("label")
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
    return Path(path)


def label_dtype(array: npt.NDArray[np.generic]) -> type[np.integer]:
    """Smallest integer type holding every value of a label map (refuses non-integer values)."""
    if array.size == 0:
        return np.uint8
    lo, hi = int(np.min(array)), int(np.max(array))
    if np.issubdtype(array.dtype, np.floating) and not np.array_equal(array, np.round(array)):
        raise GeometryError(None, "label map holds non-integer values", "internal error: report it")
    for candidate in (np.uint8, np.int16, np.uint16, np.int32):
        info = np.iinfo(candidate)
        if info.min <= lo and hi <= info.max:
            return candidate
    raise GeometryError(None, f"label values {lo}..{hi} do not fit in int32", "use smaller label values")


def save_like(array: npt.NDArray[np.generic], reference: Volume, path: str | Path, *, is_label: bool = True) -> Path:
    """Write ``array`` on the exact grid of ``reference`` (shape must match)."""
    if tuple(array.shape) != reference.shape:
        raise GeometryError(
            path,
            f"output shape {array.shape} differs from the input grid {reference.shape}",
            "internal error: report it",
        )
    if is_label:
        return save_volume(Volume(array, reference.affine), path, dtype=label_dtype(array), is_label=True)
    return save_volume(Volume(array.astype(np.float32), reference.affine), path)
