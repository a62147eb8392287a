"""Which modality an input is: DICOM tag first, then intensities, then the kind of image.

2D images without metadata (2D NIfTI, PNG/JPEG, DICOM without a Modality tag) are told apart by what
differs between a radiograph and a tomographic (MR) slice:

- **size**: radiographs come off detectors of about 2000-3500 pixels a side with 0.1-0.2 mm pixels;
  MR slices are 192-512 pixels (rarely interpolated to 1024) with pixels of 0.3 mm or more. A longest
  side of at least ``RADIOGRAPH_MIN_SIDE_PX`` pixels, or a known pixel size of at most
  ``RADIOGRAPH_MAX_PIXEL_MM``, is radiograph-sized.
- **intensity histogram**: an MR slice is mostly dark (air, bone and muscle are dark, fluid and fat sparse
  and bright), so its histogram is right-skewed (skewness >= ``MR_SKEWNESS``); a radiograph's superimposed
  tissue fills the middle of the range (skewness about -0.4..0.6 on our four radiographs).
- **bright fluid column**: on T2-weighted MR the brightest pixels include the CSF, a thin column along
  the spinal canal; on a radiograph the brightest pixels are bone (pedicles, endplates, pelvis) in short
  pieces. The longest bright component (pixels above the ``BRIGHT_PERCENTILE`` percentile) spanning at
  least ``MR_COLUMN_FRACTION`` of the image height counts as that column.

Bit depth does not help here: exported radiographs and MR slices are both often 8-bit. Decision for a
2D image: radiograph-sized -> X-ray unless both MR signs are present (then MR, uncertain), uncertain when
one MR sign is present; smaller -> MR if both MR signs are present, MR flagged as uncertain with one
sign (a cropped radiograph's bony column can pass for fluid), else X-ray flagged as uncertain (a
downsized radiograph, an 8-bit CT slice without HU and an MR slice without bright fluid look alike).
CT is recognised only from HU values or the DICOM tag. ``--modality`` overrides every rule.
Measured on shared/data: ``benchmarks/results/slice2d_modality.md``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.errors import InputError
from neurospine.slice2d.normalize import normalize_image

log = logging.getLogger(__name__)

MODALITIES = ("mr", "ct", "xray")
_DICOM = {"MR": "mr", "CT": "ct", "CR": "xray", "DX": "xray", "RF": "xray", "RG": "xray", "XA": "xray", "DR": "xray"}

#: A 2D image with a longest side of at least this many pixels is radiograph-sized.
RADIOGRAPH_MIN_SIDE_PX = 1000
#: ... and so is one with a known pixel size at most this (mm).
RADIOGRAPH_MAX_PIXEL_MM = 0.25
#: Histogram skewness (after 0.5/99.5 percentile scaling) from which a 2D image looks like MR.
MR_SKEWNESS = 1.0
#: A bright connected component spanning at least this fraction of the image height looks like CSF.
MR_COLUMN_FRACTION = 0.4
#: Percentile above which pixels count as bright for the fluid-column sign.
BRIGHT_PERCENTILE = 97.0
#: The image signs are measured on a copy whose longest side is at most this (speed; scale-free signs).
SIGN_SIDE_PX = 512


@dataclass(frozen=True)
class ModalityGuess:
    """``modality`` and the rule that decided (``how``); ``certain`` is False when the rules disagree."""

    modality: str
    how: str
    certain: bool = True


@dataclass(frozen=True)
class ImageSigns:
    """What the 2D rule looks at (see the module docstring)."""

    skewness: float
    bright_column_fraction: float

    @property
    def mr_signs(self) -> int:
        return int(self.skewness >= MR_SKEWNESS) + int(self.bright_column_fraction >= MR_COLUMN_FRACTION)

    def describe(self) -> str:
        return f"histogram skewness {self.skewness:.2f}, bright column over {self.bright_column_fraction:.0%} of height"


def image_signs(pixels: npt.ArrayLike) -> ImageSigns:
    """Histogram skewness and the height fraction of the longest bright component of a 2D image."""
    a = np.asarray(pixels, dtype=np.float32)
    step = max(1, int(np.ceil(max(a.shape) / SIGN_SIDE_PX)))
    a = a[::step, ::step]
    x = normalize_image(a, "mr").astype(np.float64)  # the MR model's own scaling
    if x.max() <= x.min():  # constant image
        return ImageSigns(0.0, 0.0)
    sd = float(x.std())
    skew = float(((x - x.mean()) ** 3).mean() / sd**3) if sd > 0 else 0.0
    lab, _ = ndimage.label(x >= np.percentile(x, BRIGHT_PERCENTILE))
    tallest = max((sl[0].stop - sl[0].start for sl in ndimage.find_objects(lab)), default=0)
    return ImageSigns(skew, tallest / x.shape[0])


def guess_modality(
    pixels: npt.ArrayLike,
    *,
    is_volume: bool,
    dicom_modality: str | None = None,
    override: str | None = None,
    spacing_mm: tuple[float, float] | None = None,
) -> ModalityGuess:
    """Modality of an input; rules, first match wins (see the module docstring for the 2D rule).

    ``override``; the DICOM Modality tag (MR, CT, CR/DX/RF/XA -> xray); HU-like values (minimum below
    -200 and maximum above 300) -> ct; any other 3D volume -> mr; a 2D image: size and intensity signs.
    ``spacing_mm``: the 2D image's pixel size when it is known (None when unknown or implausible).
    """
    if override is not None:
        key = override.lower().replace("-", "")
        key = {"xr": "xray", "x": "xray", "radiograph": "xray", "mri": "mr"}.get(key, key)
        if key not in MODALITIES:
            raise InputError(None, f"unknown modality '{override}'", "use one of mr, ct, xray")
        return ModalityGuess(key, "override")
    if dicom_modality:
        tag = dicom_modality.strip().upper()
        if tag in _DICOM:
            return ModalityGuess(_DICOM[tag], f"DICOM Modality={tag}")
    a = np.asarray(pixels)
    lo, hi = float(np.min(a)), float(np.max(a))
    if lo < -200.0 and hi > 300.0:
        return ModalityGuess("ct", "HU-like intensity range")
    if is_volume:
        return ModalityGuess("mr", "3D volume without HU values")
    if a.ndim != 2:
        return ModalityGuess("xray", "2D image without modality metadata", certain=False)
    return _guess_2d(a, spacing_mm)


def _guess_2d(a: npt.NDArray[np.generic], spacing_mm: tuple[float, float] | None) -> ModalityGuess:
    h, w = int(a.shape[0]), int(a.shape[1])
    fine = spacing_mm is not None and max(spacing_mm) <= RADIOGRAPH_MAX_PIXEL_MM
    large = max(h, w) >= RADIOGRAPH_MIN_SIDE_PX or fine
    signs = image_signs(a)
    size = f"{h}x{w} px" + (f" at {max(spacing_mm):.3g} mm" if spacing_mm is not None else "")
    n = signs.mr_signs
    if large:
        size_txt = f"radiograph-sized ({size})"
        if n == 0:
            return ModalityGuess("xray", f"{size_txt}, no MR signs ({signs.describe()})")
        if n == 2:
            return ModalityGuess("mr", f"{size_txt} but MR-like ({signs.describe()})", certain=False)
        return ModalityGuess("xray", f"{size_txt}, one MR sign ({signs.describe()})", certain=False)
    size_txt = f"slice-sized ({size})"
    if n == 2:
        return ModalityGuess("mr", f"{size_txt}, MR-like ({signs.describe()})")
    if n == 1:  # one sign: a cropped radiograph's bony column can pass for the fluid column
        return ModalityGuess("mr", f"{size_txt}, one MR sign ({signs.describe()})", certain=False)
    return ModalityGuess(
        "xray",
        f"{size_txt}, no MR signs ({signs.describe()}): a downsized radiograph, a CT slice without HU "
        "and an MR slice without bright fluid look alike",
        certain=False,
    )


def detect_modality(
    pixels: npt.ArrayLike,
    *,
    is_volume: bool,
    dicom_modality: str | None = None,
    override: str | None = None,
    spacing_mm: tuple[float, float] | None = None,
) -> tuple[str, str]:
    """``(modality, how)`` of :func:`guess_modality` (``how`` says which rule decided)."""
    g = guess_modality(
        pixels, is_volume=is_volume, dicom_modality=dicom_modality, override=override, spacing_mm=spacing_mm
    )
    return g.modality, g.how
