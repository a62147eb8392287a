"""Surface-distance metrics in millimetres: ASSD, HD95, HD.

The surface of a mask is its set of foreground voxels with at least one face-neighbour
(6-connectivity in 3D) in the background; voxels on the array border count as surface. Distances
run between voxel centres and are measured with a Euclidean distance transform that knows the voxel
spacing (``scipy.ndimage.distance_transform_edt(..., sampling=spacing_mm)``), so a 3 mm slice gap
counts as 3 mm, not as one voxel. ``spacing_mm`` is therefore a required argument everywhere.

Definitions (P = prediction surface, R = reference surface, d(x, S) = distance to the nearest
voxel of S). They follow medpy and panoptica (the library SPINEPS's authors use for ASSD/PQ), so
numbers compare with theirs; the test suite checks this on panoptica's own example pairs:

* ``assd_mm`` = (mean_{p∈P} d(p, R) + mean_{r∈R} d(r, P)) / 2, the mean of the two directed means.
* ``hd95_mm`` = 95th percentile (linear interpolation) of the pooled distances d(P, R) ∪ d(R, P).
  DeepMind's ``surface-distance`` and MONAI instead take the larger of the two directed 95th
  percentiles; compute that from :func:`surface_distances` if you need it.
* ``hd_mm`` = the largest distance in either direction (classic Hausdorff distance).

Empty masks follow :mod:`neurospine.metrics.policy` (one side empty -> ``inf``).
Only the bounding box of the two masks is processed, so cost scales with the structure, not the
image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.metrics._arrays import BoolArray, as_mask, bbox, check_pair, check_spacing, crop_pad, union_slices
from neurospine.metrics.policy import ONE_EMPTY_DISTANCE_MM, EmptyPolicy

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SurfaceDistances:
    """Directed surface distances in mm, one value per surface voxel."""

    pred_to_ref_mm: FloatArray
    ref_to_pred_mm: FloatArray

    @property
    def all_mm(self) -> FloatArray:
        return np.concatenate([self.pred_to_ref_mm, self.ref_to_pred_mm])


@dataclass(frozen=True)
class SurfaceMetrics:
    """ASSD, HD95 and HD of one comparison, in mm."""

    assd_mm: float
    hd95_mm: float
    hd_mm: float


def surface(mask: npt.ArrayLike) -> BoolArray:
    """Surface voxels of ``mask`` (foreground with a face-neighbour in the background or off the array)."""
    m = as_mask(mask)
    if not m.any():
        return np.zeros_like(m)
    structure = ndimage.generate_binary_structure(m.ndim, 1)
    eroded = ndimage.binary_erosion(m, structure=structure, border_value=0)
    return np.asarray(m & ~eroded)


def _directed(src_surface: BoolArray, dst_surface: BoolArray, spacing: tuple[float, ...]) -> FloatArray:
    """Distance from each voxel of ``src_surface`` to the nearest voxel of ``dst_surface``."""
    if not src_surface.any():
        return np.zeros(0, dtype=np.float64)
    if not dst_surface.any():
        return np.full(int(np.count_nonzero(src_surface)), math.inf)
    dist = ndimage.distance_transform_edt(~dst_surface, sampling=spacing)
    return np.asarray(dist[src_surface], dtype=np.float64)


def surface_distances(pred: npt.ArrayLike, ref: npt.ArrayLike, spacing_mm: Sequence[float]) -> SurfaceDistances:
    """Directed distances (mm) from each prediction surface voxel to the reference surface and back.

    An empty side gives an empty array; distances towards an empty side are ``inf``.
    """
    p, r = as_mask(pred), as_mask(ref)
    check_pair(p, r)
    spacing = check_spacing(spacing_mm, p.ndim)
    box = union_slices(bbox(p), bbox(r))
    if box is None:
        empty = np.zeros(0, dtype=np.float64)
        return SurfaceDistances(empty, empty.copy())
    pc, rc = crop_pad(p, box), crop_pad(r, box)
    ps, rs = surface(pc), surface(rc)
    return SurfaceDistances(_directed(ps, rs, spacing), _directed(rs, ps, spacing))


def surface_metrics(
    pred: npt.ArrayLike,
    ref: npt.ArrayLike,
    spacing_mm: Sequence[float],
    *,
    empty: EmptyPolicy | str = EmptyPolicy.NAN,
    percentile: float = 95.0,
) -> SurfaceMetrics:
    """ASSD, HD``percentile`` and HD from one pair of distance transforms."""
    d = surface_distances(pred, ref, spacing_mm)
    n_p, n_r = d.pred_to_ref_mm.size, d.ref_to_pred_mm.size
    if n_p == 0 and n_r == 0:
        v = EmptyPolicy.parse(empty).distance_mm
        return SurfaceMetrics(v, v, v)
    if n_p == 0 or n_r == 0:
        v = ONE_EMPTY_DISTANCE_MM
        return SurfaceMetrics(v, v, v)
    assd = 0.5 * (float(d.pred_to_ref_mm.mean()) + float(d.ref_to_pred_mm.mean()))
    hd95 = float(np.percentile(d.all_mm, percentile))
    hd = max(float(d.pred_to_ref_mm.max()), float(d.ref_to_pred_mm.max()))
    return SurfaceMetrics(assd_mm=assd, hd95_mm=hd95, hd_mm=hd)


def assd_mm(
    pred: npt.ArrayLike, ref: npt.ArrayLike, spacing_mm: Sequence[float], *, empty: EmptyPolicy | str = EmptyPolicy.NAN
) -> float:
    """Average symmetric surface distance in mm (mean of the two directed mean distances)."""
    return surface_metrics(pred, ref, spacing_mm, empty=empty).assd_mm


def hd95_mm(
    pred: npt.ArrayLike, ref: npt.ArrayLike, spacing_mm: Sequence[float], *, empty: EmptyPolicy | str = EmptyPolicy.NAN
) -> float:
    """95th-percentile Hausdorff distance in mm (95th percentile of the pooled surface distances)."""
    return surface_metrics(pred, ref, spacing_mm, empty=empty).hd95_mm


def hd_mm(
    pred: npt.ArrayLike, ref: npt.ArrayLike, spacing_mm: Sequence[float], *, empty: EmptyPolicy | str = EmptyPolicy.NAN
) -> float:
    """Hausdorff distance in mm (largest surface-to-surface distance in either direction)."""
    return surface_metrics(pred, ref, spacing_mm, empty=empty).hd_mm
