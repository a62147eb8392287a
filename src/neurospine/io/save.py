"""Atomic writing: every output appears whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
import numpy as np
import numpy.typing as npt

from neurospine.errors import GeometryError
from neurospine.io.volume import Volume


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # keep the full suffix (.nii.gz) so writers choose the right format
    suffix = "".join(target.suffixes[-2:]) if target.name.endswith(".nii.gz") else target.suffix
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; outputs get the usual permissions
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | Path, text: str) -> Path:
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
