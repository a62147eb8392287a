"""Reorientation by axis permutation/flip (exact, no interpolation) and its inverse."""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np
import numpy.typing as npt

from neurospine.io.volume import Volume


@dataclass(frozen=True)
class Reorientation:
    """How a volume was reoriented; ``undo`` maps arrays on the new grid back to the original."""

    original_shape: tuple[int, int, int]
    original_affine: npt.NDArray[np.float64]
    forward: npt.NDArray[np.float64]  # nibabel ornt: original -> target
    backward: npt.NDArray[np.float64]  # target -> original

    def undo(self, array: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
        """Bring an array from the reoriented grid back onto the original grid."""
        out = nib.orientations.apply_orientation(array, self.backward)
        if tuple(out.shape[:3]) != self.original_shape:
            raise ValueError(f"undo gave shape {out.shape}, expected {self.original_shape}")
        return np.ascontiguousarray(out)

    def undo_volume(self, vol: Volume) -> Volume:
        return Volume(self.undo(vol.data), self.original_affine, vol.source)


def reorient(vol: Volume, axcodes: str = "RAS") -> tuple[Volume, Reorientation]:
    """Return ``vol`` with axes ordered as ``axcodes`` (e.g. ``"PIR"``) and the record to undo it."""
    start = nib.orientations.io_orientation(vol.affine)
    target = nib.orientations.axcodes2ornt(tuple(axcodes))
    fwd = nib.orientations.ornt_transform(start, target)
    bwd = nib.orientations.ornt_transform(target, start)
    data = np.ascontiguousarray(nib.orientations.apply_orientation(vol.data, fwd))
    affine = vol.affine @ nib.orientations.inv_ornt_aff(fwd, vol.shape)
    record = Reorientation(vol.shape, vol.affine.copy(), fwd, bwd)
    return Volume(data, affine, vol.source), record
