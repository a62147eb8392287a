"""Per-slice cord morphometry from a soft (partial-volume) or binary mask.

For every axial slice that holds cord (mask >= ``present_threshold`` somewhere):

* ``csa_mm2``: sum of the mask values x in-plane voxel area, times ``cos(theta)``, the angle between
  the smoothed centreline and the slice normal (an oblique cord cuts the slice in a stretched ellipse).
* ``ap_mm``/``rl_mm``: widths of the moment-equivalent ellipse along the anterior-posterior and
  right-left directions of the plane perpendicular to the cord (4 x the weighted standard deviation;
  exact for a uniform ellipse), after projecting the slice along the centreline tangent.
* ``eccentricity`` and ``orientation_deg`` (major axis relative to right-left) of that ellipse.
* appended columns (2.0.0; earlier columns unchanged): ``csa_inplane_mm2`` is the area in the image slice
  before the angle correction (``csa_mm2 = csa_inplane_mm2 * cos(angle_deg)``); ``csa_mm2_t25`` and
  ``csa_mm2_t75`` are the angle-corrected areas of the soft map thresholded at 0.25 and 0.75, and
  ``csa_mm2_uncertainty`` half their difference (how much the area depends on where the cord edge is
  drawn inside the partial-volume rim); ``canal_area_mm2`` is the angle-corrected area of the spinal
  canal mask (cord included) when one is given, and ``cord_canal_ratio = csa_mm2 / canal_area_mm2``, the
  cord's share of its canal: a per-slice normalisation that removes most between-person size differences
  (as SCT's aSCOR); per level the ratio is averaged over the level's slices. ``near_lost_end`` (appended
  last) flags the slices less than 20 mm above a caudal end of the cord that lies inside the image
  (:mod:`neurospine.cord.lostend`).

Slices run along the image axis nearest to superior-inferior (exact reorientation, no resampling).
``slice`` in the output is the index along that axis of the *input* grid.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import numpy.typing as npt

from neurospine.cord.centerline import DEFAULT_BANDWIDTH_MM, fit_centerline
from neurospine.cord.conus import FLAG_COLUMN, below_conus, flag_text
from neurospine.cord.levels import MAX_GAP_MM, level_name, levels_per_slice
from neurospine.cord.lostend import FLAG_COLUMN as LOST_END_COLUMN
from neurospine.cord.lostend import flagged_slices
from neurospine.errors import GeometryError
from neurospine.io import Volume, reorient

#: A slice counts as holding cord when some voxel reaches this value.
PRESENT_THRESHOLD = 0.5

CSV_COLUMNS = (
    "slice",
    "position_mm",
    "csa_mm2",
    "angle_deg",
    "ap_mm",
    "rl_mm",
    "eccentricity",
    "orientation_deg",
    "level",
    "levels_source",
    "levels_positional",
    FLAG_COLUMN,
    "csa_inplane_mm2",
    "csa_mm2_t25",
    "csa_mm2_t75",
    "csa_mm2_uncertainty",
    "canal_area_mm2",
    "cord_canal_ratio",
    "gm_area_mm2",
    LOST_END_COLUMN,
)
PERLEVEL_COLUMNS = (
    "level",
    "n_slices",
    "csa_mm2_mean",
    "csa_mm2_sd",
    "levels_source",
    "levels_positional",
    "csa_mm2_uncertainty_mean",
    "canal_area_mm2_mean",
    "cord_canal_ratio_mean",
    "gm_area_mm2_mean",
)
#: soft-map thresholds whose areas bracket the per-slice CSA (``csa_mm2_t25``, ``csa_mm2_t75``)
UNCERTAINTY_THRESHOLDS = (0.25, 0.75)


@dataclass(frozen=True)
class SliceMeasure:
    slice: int
    position_mm: float
    csa_mm2: float
    angle_deg: float
    ap_mm: float
    rl_mm: float
    eccentricity: float
    orientation_deg: float
    level: str = ""
    csa_inplane_mm2: float = math.nan
    csa_mm2_t25: float = math.nan
    csa_mm2_t75: float = math.nan
    csa_mm2_uncertainty: float = math.nan
    canal_area_mm2: float = math.nan
    cord_canal_ratio: float = math.nan
    gm_area_mm2: float = math.nan
    near_lost_end: int = 0


def left_out(row: SliceMeasure) -> bool:
    """Whether a slice is left out of the summaries: flagged below the conus or near a lost end."""
    return bool(below_conus(row.level)) or bool(row.near_lost_end)


@dataclass(frozen=True)
class LevelMeasure:
    level: str
    n_slices: int
    csa_mm2_mean: float
    csa_mm2_sd: float
    csa_mm2_uncertainty_mean: float = math.nan
    canal_area_mm2_mean: float = math.nan
    cord_canal_ratio_mean: float = math.nan
    gm_area_mm2_mean: float = math.nan


@dataclass(frozen=True)
class Morphometry:
    """Per-slice measures; ``levels_source`` (``mask``, ``estimated`` or ``none``) says where the level
    names come from and ``levels_positional`` that an estimate rests on positional (unanchored) naming.

    Slices at L3 or lower (:mod:`neurospine.cord.conus`) and slices near a caudal end inside the image
    (:mod:`neurospine.cord.lostend`) are flagged in :meth:`csv` and left out of every summary: :meth:`per_level`,
    :meth:`per_level_csv` (levels and the ``all`` row) and :meth:`cord_slices`.
    """

    slices: list[SliceMeasure] = field(default_factory=list)
    levels_source: str = "none"
    levels_positional: bool = False

    def cord_slices(self) -> list[SliceMeasure]:
        """The slices flagged neither as below the conus (slices without a level are kept) nor as near a lost end."""
        return [r for r in self.slices if not left_out(r)]

    def mean_csa_mm2(self, *, all_slices: bool = False) -> float | None:
        """Mean CSA over the summarised slices (:meth:`cord_slices`), or over every slice; None when empty."""
        rows = self.slices if all_slices else self.cord_slices()
        return round(float(np.mean([r.csa_mm2 for r in rows])), 3) if rows else None

    def per_level(self) -> list[LevelMeasure]:
        return aggregate_levels(self.cord_slices())

    def _provenance(self) -> dict[str, object]:
        return {"levels_source": self.levels_source, "levels_positional": int(self.levels_positional)}

    def csv(self) -> str:
        rows = [{**asdict(r), **self._provenance(), FLAG_COLUMN: flag_text(r.level)} for r in self.slices]
        return _to_csv(CSV_COLUMNS, rows)

    def per_level_csv(self, *, with_total: bool = False) -> str:
        """Per-level rows (cranial first), optionally followed by an ``all`` row over every slice; slices
        flagged are left out (no row for their levels, no ``all`` row when no other slice is left)."""
        rows = self.per_level()
        kept = self.cord_slices()
        if with_total and kept:
            csa = np.array([r.csa_mm2 for r in kept])
            sd = float(csa.std(ddof=1)) if csa.size > 1 else 0.0
            rows.append(LevelMeasure("all", int(csa.size), float(csa.mean()), sd, *_extra_means(kept)))
        return _to_csv(PERLEVEL_COLUMNS, [{**asdict(r), **self._provenance()} for r in rows])


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.4f}"
    return str(v)


def _to_csv(columns: tuple[str, ...], rows: list[dict[str, object]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_fmt(r[c]) for c in columns])
    return buf.getvalue()


def superior_axis(affine: npt.NDArray[np.float64]) -> int:
    """Index of the voxel axis closest to the superior-inferior world axis."""
    cols = np.asarray(affine)[:3, :3]
    unit = cols / np.linalg.norm(cols, axis=0, keepdims=True)
    return int(np.argmax(np.abs(unit[2])))


@dataclass(frozen=True)
class SliceCentroids:
    """Cord centroid of every axial slice of a RAS-reoriented mask that holds cord."""

    slices: list[int]  # slice index along RAS axis 2
    areas_mm2: list[float]  # in-slice area (sum of the mask values x pixel area)
    centroids_mm: list[npt.NDArray[np.float64]]  # world RAS mm
    positions_mm: list[float]  # position of each centroid along the slice normal
    normal: npt.NDArray[np.float64]  # unit slice normal, pointing towards increasing slice index


def slice_centroids(
    soft_ras: npt.NDArray[np.float64], affine_ras: npt.NDArray[np.float64], present_threshold: float
) -> SliceCentroids:
    """Weighted centroid per slice (axis 2) of ``soft_ras`` for slices where the mask reaches the threshold."""
    aff = np.asarray(affine_ras, dtype=np.float64)
    col0, col1, col2 = aff[:3, 0], aff[:3, 1], aff[:3, 2]
    cross = np.cross(col0, col1)
    normal = cross / float(np.linalg.norm(cross))
    if normal @ col2 < 0:
        normal = -normal
    pixel_area_mm2 = float(np.linalg.norm(cross))
    present = np.flatnonzero((soft_ras >= present_threshold).any(axis=(0, 1)))
    ii, jj = np.meshgrid(np.arange(soft_ras.shape[0]), np.arange(soft_ras.shape[1]), indexing="ij")
    out = SliceCentroids([], [], [], [], normal)
    for kp in present:
        k = int(kp)
        w = soft_ras[:, :, k]
        total = float(w.sum())
        ci, cj = float((w * ii).sum() / total), float((w * jj).sum() / total)
        c = aff[:3, :3] @ np.array([ci, cj, float(k)]) + aff[:3, 3]
        out.slices.append(k)
        out.areas_mm2.append(total * pixel_area_mm2)
        out.centroids_mm.append(c)
        out.positions_mm.append(float(normal @ c))
    return out


def measure_cord(
    mask: Volume,
    *,
    levels: Volume | None = None,
    canal: Volume | None = None,
    gm: Volume | None = None,
    level_gap_mm: float = MAX_GAP_MM,
    bandwidth_mm: float = DEFAULT_BANDWIDTH_MM,
    present_threshold: float = PRESENT_THRESHOLD,
    field_bottom_fades: bool = False,
) -> Morphometry:
    """Per-slice morphometry of ``mask`` (values in [0, 1]); ``levels`` on the same grid names slices.

    ``level_gap_mm``: slices without a level take the level of the nearest named slice within this
    distance (meant for seg-vert masks, whose discs and gaps name no slice; 0 for cord-by-level masks).
    ``canal``: a spinal canal mask on the same grid (values >= 0.5 count), for ``canal_area_mm2`` and
    ``cord_canal_ratio``. ``gm``: a grey-matter mask on the same grid (values >= 0.5 count), for ``gm_area_mm2``
    (angle-corrected like ``csa_mm2``). ``field_bottom_fades`` (a head MRI): the slices near the cord's caudal end are
    flagged ``near_lost_end`` even when it reaches the image's last slice (:mod:`neurospine.cord.lostend`).
    """
    if levels is not None and not levels.same_grid(mask):
        raise GeometryError(levels.source, "the level mask is not on the cord mask's grid", "resample it first")
    if canal is not None and not canal.same_grid(mask):
        raise GeometryError(canal.source, "the canal mask is not on the cord mask's grid", "resample it first")
    if gm is not None and not gm.same_grid(mask):
        raise GeometryError(gm.source, "the grey-matter mask is not on the cord mask's grid", "resample it first")
    data = np.clip(np.asarray(mask.data, dtype=np.float64), 0.0, 1.0)
    ras, _ = reorient(mask.with_data(data), "RAS")
    soft = np.asarray(ras.data, dtype=np.float64)
    aff = ras.affine
    sc = slice_centroids(soft, aff, present_threshold)
    if not sc.slices:
        return Morphometry([])
    ks, areas, cents, normal = sc.slices, sc.areas_mm2, sc.centroids_mm, sc.normal
    ii, jj = np.meshgrid(np.arange(soft.shape[0]), np.arange(soft.shape[1]), indexing="ij")
    cl = fit_centerline(sc.positions_mm, cents, normal, weights=areas, bandwidth_mm=bandwidth_mm)
    level_ids: npt.NDArray[np.int32] = np.zeros(soft.shape[2], dtype=np.int32)
    if levels is not None:
        lev_ras, _ = reorient(levels, "RAS")
        all_pos = np.array(
            [normal @ (aff[:3, :3] @ np.array([0.0, 0.0, float(k)]) + aff[:3, 3]) for k in range(soft.shape[2])]
        )
        level_ids = levels_per_slice(
            lev_ras.data,
            soft >= present_threshold,
            all_pos,
            axis=2,
            max_gap_mm=level_gap_mm,
            spacing_mm=lev_ras.spacing_mm,
        )
    canal_ras = None if canal is None else np.asarray(reorient(canal, "RAS")[0].data) >= 0.5
    gm_ras = None if gm is None else np.asarray(reorient(gm, "RAS")[0].data) >= 0.5
    pixel_area_mm2 = float(np.linalg.norm(np.cross(aff[:3, 0], aff[:3, 1])))
    lo_t, hi_t = UNCERTAINTY_THRESHOLDS
    inv_in = np.linalg.inv(mask.affine)
    s_axis = superior_axis(mask.affine)
    # slices are this far apart along their normal (on a sheared grid less than the third column's length)
    slice_mm = abs(float(normal @ aff[:3, 2]))
    near_end = flagged_slices(ks, slice_mm, field_bottom_fades=field_bottom_fades)
    rows: list[SliceMeasure] = []
    for idx, k in enumerate(ks):
        t = cl.tangents[idx]
        cos_t = float(t @ normal)
        csa = areas[idx] * cos_t
        w = soft[:, :, k]
        sel = w > 0
        wv = w[sel]
        pts = (np.stack([ii[sel], jj[sel], np.full(wv.size, float(k))], axis=1) @ aff[:3, :3].T) + aff[:3, 3]
        d = pts - cents[idx]
        q = d - (d @ t)[:, None] * t[None, :]  # project along the cord onto the plane normal to it
        e_rl = np.array([1.0, 0.0, 0.0]) - t[0] * t
        if np.linalg.norm(e_rl) < 1e-6:
            e_rl = np.array([0.0, 1.0, 0.0]) - t[1] * t
        e_rl /= np.linalg.norm(e_rl)
        e_ap = np.cross(t, e_rl)
        if e_ap[1] < 0:
            e_ap = -e_ap
        x, y = q @ e_rl, q @ e_ap
        sw = float(wv.sum())
        cov = np.array([[(wv * x * x).sum(), (wv * x * y).sum()], [(wv * x * y).sum(), (wv * y * y).sum()]]) / sw
        evals, evecs = np.linalg.eigh(cov)
        lam_min, lam_max = max(float(evals[0]), 0.0), max(float(evals[1]), 0.0)
        ecc = math.sqrt(max(0.0, 1.0 - lam_min / lam_max)) if lam_max > 0 else 0.0
        major = evecs[:, 1]
        orient = math.degrees(math.atan2(major[1], major[0]))
        if orient > 90.0:
            orient -= 180.0
        elif orient <= -90.0:
            orient += 180.0
        in_idx = inv_in[:3, :3] @ cents[idx] + inv_in[:3, 3]
        a_lo = float((w >= lo_t).sum()) * pixel_area_mm2 * cos_t
        a_hi = float((w >= hi_t).sum()) * pixel_area_mm2 * cos_t
        canal_mm2 = math.nan if canal_ras is None else float(canal_ras[:, :, k].sum()) * pixel_area_mm2 * cos_t
        gm_mm2 = math.nan if gm_ras is None else float(gm_ras[:, :, k].sum()) * pixel_area_mm2 * cos_t
        rows.append(
            SliceMeasure(
                slice=round(float(in_idx[s_axis])),
                position_mm=float(cents[idx][2]),
                csa_mm2=float(csa),
                angle_deg=float(cl.angles_deg[idx]),
                ap_mm=4.0 * math.sqrt(max(float(cov[1, 1]), 0.0)),
                rl_mm=4.0 * math.sqrt(max(float(cov[0, 0]), 0.0)),
                eccentricity=float(ecc),
                orientation_deg=float(orient),
                level=level_name(int(level_ids[k])),
                csa_inplane_mm2=float(areas[idx]),
                csa_mm2_t25=a_lo,
                csa_mm2_t75=a_hi,
                csa_mm2_uncertainty=0.5 * (a_lo - a_hi),
                canal_area_mm2=canal_mm2,
                cord_canal_ratio=float(csa) / canal_mm2 if canal_mm2 > 0 else math.nan,
                gm_area_mm2=gm_mm2,
                near_lost_end=int(k in near_end),
            )
        )
    rows.sort(key=lambda r: r.slice)
    return Morphometry(rows)


def aggregate_levels(rows: list[SliceMeasure]) -> list[LevelMeasure]:
    """Mean and sample sd of ``csa_mm2`` per level (rows without a level are skipped), cranial first."""
    from neurospine.labels import CRANIOCAUDAL_ORDER, VERTEBRA_IDS

    groups: dict[str, list[SliceMeasure]] = {}
    for r in rows:
        if r.level:
            groups.setdefault(r.level, []).append(r)
    rank = {v: i for i, v in enumerate(CRANIOCAUDAL_ORDER)}
    out = []
    for name, members in sorted(groups.items(), key=lambda kv: rank.get(VERTEBRA_IDS.get(kv[0], 0), 999)):
        a = np.asarray([r.csa_mm2 for r in members])
        sd = float(a.std(ddof=1)) if a.size > 1 else 0.0
        out.append(LevelMeasure(name, int(a.size), float(a.mean()), sd, *_extra_means(members)))
    return out


def _nanmean(values: list[float]) -> float:
    a = np.asarray(values, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else math.nan


def _extra_means(rows: list[SliceMeasure]) -> tuple[float, float, float, float]:
    """Mean CSA uncertainty, canal area, cord/canal ratio and grey-matter area of ``rows`` (nan where not
    measured)."""
    return (
        _nanmean([r.csa_mm2_uncertainty for r in rows]),
        _nanmean([r.canal_area_mm2 for r in rows]),
        _nanmean([r.cord_canal_ratio for r in rows]),
        _nanmean([r.gm_area_mm2 for r in rows]),
    )
