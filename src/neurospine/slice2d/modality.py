"""Which modality an input is: DICOM tag first, then intensities, then the kind of image."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from neurospine.errors import InputError

MODALITIES = ("mr", "ct", "xray")
_DICOM = {"MR": "mr", "CT": "ct", "CR": "xray", "DX": "xray", "RF": "xray", "RG": "xray", "XA": "xray", "DR": "xray"}


def detect_modality(
    pixels: npt.ArrayLike, *, is_volume: bool, dicom_modality: str | None = None, override: str | None = None
) -> tuple[str, str]:
    """Return ``(modality, how)``; ``how`` says which rule decided.

    Rules, first match wins: ``override``; the DICOM Modality tag (MR, CT, CR/DX/RF/XA -> xray); a
    3D volume with HU-like values (minimum below -200 and maximum above 300) -> ct; any other 3D volume
    -> mr; a 2D image -> xray (2D sagittal MR/CT slices should be given with ``--modality``).
    """
    if override is not None:
        key = override.lower().replace("-", "")
        key = {"xr": "xray", "x": "xray", "radiograph": "xray", "mri": "mr"}.get(key, key)
        if key not in MODALITIES:
            raise InputError(None, f"unknown modality '{override}'", "use one of mr, ct, xray")
        return key, "override"
    if dicom_modality:
        tag = dicom_modality.strip().upper()
        if tag in _DICOM:
            return _DICOM[tag], f"DICOM Modality={tag}"
    a = np.asarray(pixels)
    lo, hi = float(np.min(a)), float(np.max(a))
    if lo < -200.0 and hi > 300.0:
        return "ct", "HU-like intensity range"
    if is_volume:
        return "mr", "3D volume without HU values"
    return "xray", "2D image without modality metadata"
