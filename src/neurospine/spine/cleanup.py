"""Anatomy clean-up of the network's class map: only what is connected to the spine column stays labelled.

Works on the network class map (``neurospine.spine.classes``, model grid PIR: axis 0 posterior, axis 1
inferior, axis 2 right) and its voxel spacing, before the instance phase:

1. **Column connectivity** (:func:`keep_column`): labelled components (26-connected, any class) that hold no
   vertebral body, endplate or disc are not spine (e.g. the band of posterior-element classes the network
   paints along the anterior image border of some scans). A second body-bearing piece is kept only when it
   lies in the column's corridor (a column broken by a missed disc stays whole).
2. **Sacrum where a sacrum can be** (:func:`constrain_sacrum`): not above the middle of the lowest body
   (:func:`lowest_body`), not more than ``SACRUM_ANTERIOR_MM`` in front of that body (a limit that recedes
   posteriorly below it by ``SACRUM_ANTERIOR_SLOPE``, or as steeply as the column's anterior wall above, as the
   sacrum's front does), not farther than
   ``SACRUM_LATERAL_MM`` from the column's midline or ``SACRUM_LENGTH_MM`` below the top of the sacrum,
   thick bone rather than scattered blobs (an opening of ``SACRUM_OPENING_MM``), and touching the column
   (within ``SACRUM_CONTACT_MM`` of the lowest body and the discs and endplates at most
   ``SACRUM_CONTACT_BELOW_MM`` below it), nor hanging on it through thin necks (what an opening of
   ``SACRUM_NECK_MM`` cuts off and leaves away from the column). Below the sacrum's top there is no vertebra
   (:func:`drop_bodies_below`): a corpus/endplate piece starting more than ``BODY_BELOW_LOWEST_MM`` below the
   lowest body is sacrum when the sacrum encloses it and pelvic tissue otherwise (a blob in the rectum would
   become a vertebra named S1).

3. **Discs between bones** (:func:`constrain_discs`): a disc piece (26-connected) must come within
   ``DISC_CONTACT_MM`` of a vertebral body, endplate or the sacrum, and must not lie more than
   ``DISC_BELOW_LOWEST_MM`` below the lowest body (the lumbosacral disc is the lowest one; the network's "disc"
   specks in the sacrum, the coccyx or the soft tissue behind the canal are not discs). Posterior-element
   voxels more than ``POSTERIOR_BELOW_LOWEST_MM`` below the lowest body are unlabelled too: the lowest
   vertebra's arch ends at the sacrum, whose own arch SPINEPS labels as sacrum.

After the instance phase, :func:`drop_unassigned` unlabels what no vertebra took (fragments the instance
phase dropped, posterior pieces no bone path reaches), so no labelled voxel is left without an owner.

Every step counts the voxels it removed per class (:class:`CleanupReport`), written to the outputs' JSON.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cc3d
import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.spine import classes as C
from neurospine.spine.instances import FRAGMENT_RATIO, MIN_BODY_MM3

log = logging.getLogger(__name__)

#: a component must hold at least this much body/endplate/disc (mm^3) to be part of the column
COLUMN_ANCHOR_MIN_MM3 = 300.0
#: a second body-bearing component is kept when its anchor centroid is this close (mm) to the main column's
#: axis in the anterior-posterior direction and in the left-right direction
COLUMN_CORRIDOR_AP_MM = 40.0
COLUMN_CORRIDOR_LR_MM = 30.0
#: smallest body piece (mm^3) considered when looking for the lowest body (instances.MIN_BODY_MM3), and smallest
#: fraction of the median piece (smaller corpus pieces at the bottom are sacral segments, instances.FRAGMENT_RATIO)
BODY_PIECE_MIN_MM3 = MIN_BODY_MM3
BODY_PIECE_RATIO = FRAGMENT_RATIO
#: a body piece belongs to the column when its top lies at most this far (mm) below the bottom of the pieces above it
#: (discs are 8-15 mm; a body with its upper half missed leaves about 25 mm), or, farther down, when it is a whole
#: body (at least this fraction of the median piece: a whole body the network missed leaves a gap of about 40 mm)
COLUMN_GAP_MM = 30.0
DETACHED_BODY_RATIO = 0.5
#: the lowest body is the bottom this many mm of the lowest body piece (bodies the network joins through
#: their endplates form one piece; a lumbar body is 25-30 mm tall)
LOWEST_BODY_MM = 30.0
#: sacrum voxels more than this far (mm) in front of the lowest body's anterior wall are pelvic tissue
SACRUM_ANTERIOR_MM = 15.0
#: below the lowest body the limit recedes posteriorly by this many mm per mm down: the sacrum's anterior surface
#: runs back from the promontory (sacral slope 30-50 degrees; 0.4 allows a slope down to about 22 degrees)
SACRUM_ANTERIOR_SLOPE = 0.4
#: ... or by the slope of the column's anterior wall over its lowest ``COLUMN_SLOPE_MM`` (the lordosis carried on),
#: when that is steeper (capped at ``SACRUM_MAX_SLOPE``)
COLUMN_SLOPE_MM = 60.0
SACRUM_MAX_SLOPE = 1.5
#: ... or farther than this (mm) left or right of the column's midline (adult sacrum with alae ~100-120 mm wide)
SACRUM_LATERAL_MM = 65.0
#: ... or farther than this (mm) below the sacrum's top row (adult sacrum about 100-110 mm long)
SACRUM_LENGTH_MM = 120.0
#: opening radius (mm): the sacrum is thick bone; thinner threads and scattered blobs are spill
SACRUM_OPENING_MM = 2.0
#: a sacrum piece must come this close (mm) to the lowest bodies or discs
SACRUM_CONTACT_MM = 12.0
#: spill hanging on the sacrum through thin necks: the pieces an opening of this radius (mm) cuts off that do not
#: come within ``SACRUM_CONTACT_MM`` of the column are removed (thin parts still attached are kept; 0 = off)
SACRUM_NECK_MM = 3.0
#: ... where a disc or endplate voxel counts as column only when it lies at most this far (mm) below the bottom of
#: the lowest body (the lumbosacral disc; the network's disc/endplate specks in the rectum are not the column)
SACRUM_CONTACT_BELOW_MM = 20.0
#: a corpus/endplate piece whose top lies farther than this (mm) below the bottom of the lowest body is not a
#: vertebra (the sacrum is there): sacrum when the sacrum encloses it (this fraction of a shell this thick (mm)
#: around it is sacrum: a sacral body the network called corpus), pelvic tissue otherwise
BODY_BELOW_LOWEST_MM = 20.0
BODY_ENCLOSED_FRACTION = 0.5
BODY_SHELL_MM = 3.0
#: a disc piece must come this close (mm) to a body, endplate or the sacrum (discs sit between bones)
DISC_CONTACT_MM = 3.0
#: ... and its centre must not lie farther than this (mm) below the bottom of the lowest body
DISC_BELOW_LOWEST_MM = 20.0
#: posterior-element voxels farther than this (mm) below the bottom of the lowest body are not spine
POSTERIOR_BELOW_LOWEST_MM = 30.0


@dataclass
class CleanupReport:
    """Voxels removed (set to background) per network class, on the model grid, and their volume."""

    removed_voxels: dict[str, int] = field(default_factory=dict)
    voxel_mm3: float = 1.0

    def add(self, before: npt.NDArray[np.integer], after: npt.NDArray[np.integer], step: str = "") -> None:
        gone = (before > 0) & (after == 0)
        if not gone.any():
            return
        counts = np.bincount(np.asarray(before[gone], dtype=np.int64), minlength=C.N_CLASSES)
        for idx in np.nonzero(counts)[0]:
            name = C.NET_CLASSES[int(idx)][0]
            self.removed_voxels[name] = self.removed_voxels.get(name, 0) + int(counts[idx])
        if step:
            log.debug("clean-up %s removed %d voxels", step, int(gone.sum()))

    @property
    def total_voxels(self) -> int:
        return int(sum(self.removed_voxels.values()))

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary: voxels and mm^3 removed per class (model grid) and in total."""
        return {
            "removed_voxels_model_grid": dict(sorted(self.removed_voxels.items())),
            "removed_mm3": {k: round(v * self.voxel_mm3, 1) for k, v in sorted(self.removed_voxels.items())},
            "removed_mm3_total": round(self.total_voxels * self.voxel_mm3, 1),
        }


_ANCHOR = (C.CORPUS, C.ENDPLATE, C.DISC)


def _column_axis(
    mask: npt.NDArray[np.bool_], n_rows: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None:
    """Mean P and R index of ``mask`` for every inferior row (interpolated; held constant beyond the ends)."""
    counts = mask.sum(axis=(0, 2)).astype(np.float64)
    rows = np.nonzero(counts > 0)[0]
    if rows.size == 0:
        return None
    p_idx = np.arange(mask.shape[0], dtype=np.float64)
    r_idx = np.arange(mask.shape[2], dtype=np.float64)
    p_mean = (mask.sum(axis=2) * p_idx[:, None]).sum(axis=0)[rows] / counts[rows]
    r_mean = (mask.sum(axis=0) * r_idx[None, :]).sum(axis=1)[rows] / counts[rows]
    grid = np.arange(n_rows, dtype=np.float64)
    return np.interp(grid, rows, p_mean), np.interp(grid, rows, r_mean)


def keep_column(
    cls: npt.NDArray[np.uint8], spacing_mm: tuple[float, float, float], report: CleanupReport | None = None
) -> npt.NDArray[np.uint8]:
    """Unlabel every labelled component that is not part of the spine column (see module docstring, step 1).

    Leaves the map unchanged when no component holds a body, endplate or disc (nothing to anchor on)."""
    fg = cls > 0
    if not fg.any():
        return cls.copy()
    vox = float(np.prod(spacing_mm))
    lab, n = cc3d.connected_components(fg.astype(np.uint8), connectivity=26, return_N=True)
    lab = np.asarray(lab, dtype=np.int64)
    anchor = np.isin(cls, _ANCHOR)
    per = np.bincount(lab[anchor], minlength=n + 1)
    per[0] = 0
    if per.max() * vox < COLUMN_ANCHOR_MIN_MM3:
        return cls.copy()
    main = int(np.argmax(per))
    keep = np.zeros(n + 1, dtype=bool)
    keep[main] = True
    axis = _column_axis(anchor & (lab == main), cls.shape[1])
    assert axis is not None
    axis_p, axis_r = axis
    for k in np.nonzero(per * vox >= COLUMN_ANCHOR_MIN_MM3)[0]:
        if k == main:
            continue
        pts = np.nonzero(anchor & (lab == k))
        p, i, r = (float(np.mean(a)) for a in pts)
        row = round(i)
        near_ap = abs(p - axis_p[row]) * spacing_mm[0] <= COLUMN_CORRIDOR_AP_MM
        near_lr = abs(r - axis_r[row]) * spacing_mm[2] <= COLUMN_CORRIDOR_LR_MM
        keep[k] = near_ap and near_lr
    out = np.where(keep[lab], cls, 0).astype(np.uint8)
    if report is not None:
        report.add(cls, out, "column")
    return out


def lowest_body(cls: npt.NDArray[np.uint8], spacing_mm: tuple[float, float, float]) -> npt.NDArray[np.bool_] | None:
    """The lowest vertebral body: the bottom ``LOWEST_BODY_MM`` of the lowest corpus/endplate piece (26-connected,
    at least ``BODY_PIECE_MIN_MM3`` and ``BODY_PIECE_RATIO`` of the median piece) of the column. The column is
    followed down from the largest piece: a lower piece belongs to it when its top lies at most ``COLUMN_GAP_MM``
    below the bottom of the pieces above it, or when it is a whole body (``DETACHED_BODY_RATIO`` of the median
    piece) past a missed one; a smaller detached blob in the pelvis is not the lowest body. None when there is no
    such piece."""
    body = np.isin(cls, (C.CORPUS, C.ENDPLATE))
    if not body.any():
        return None
    vox = float(np.prod(spacing_mm))
    lab, n = cc3d.connected_components(body.astype(np.uint8), connectivity=26, return_N=True)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    big = sizes[1:][sizes[1:] * vox >= BODY_PIECE_MIN_MM3]
    if big.size == 0:
        return None
    floor = max(BODY_PIECE_MIN_MM3 / vox, BODY_PIECE_RATIO * float(np.median(big)))
    pieces = []  # (top row, 98th-percentile bottom row, size, id)
    for k, sl in enumerate(ndimage.find_objects(lab), start=1):
        if sl is None or sizes[k] < floor:
            continue
        rows = np.nonzero((lab[sl] == k).any(axis=(0, 2)))[0] + sl[1].start
        pieces.append((float(rows.min()), float(np.percentile(rows, 98)), int(sizes[k]), k))
    if not pieces:
        return None
    start_top, reach = next((p[0], p[1]) for p in pieces if p[2] == max(q[2] for q in pieces))
    whole = DETACHED_BODY_RATIO * float(np.median(big))
    column = []
    for top, bottom, size, k in sorted(pieces):  # top to bottom; pieces starting above the largest one belong
        # across a wider gap only a whole body continues the column (a body the network missed leaves ~40 mm)
        if top > start_top and (top - reach) * spacing_mm[1] > COLUMN_GAP_MM and size < whole:
            continue
        reach = max(reach, bottom)
        column.append((bottom, -k))
    best_bottom, neg_k = max(column)  # ties: the lower piece id, as before the column walk
    best = -neg_k
    rows = np.arange(cls.shape[1])[None, :, None]
    return np.asarray((lab == best) & (rows >= best_bottom - LOWEST_BODY_MM / spacing_mm[1]), dtype=bool)


def _ball(radius_mm: float, spacing_mm: tuple[float, float, float]) -> npt.NDArray[np.bool_]:
    r = [max(1, round(radius_mm / s)) for s in spacing_mm]
    g = np.ogrid[tuple(slice(-k, k + 1) for k in r)]
    return np.asarray(sum((gi * s / radius_mm) ** 2 for gi, s in zip(g, spacing_mm, strict=True)) <= 1.0)


def _padded_box(sl: tuple[slice, ...], pad: list[int], shape: tuple[int, ...]) -> tuple[slice, slice, slice]:
    """``sl`` grown by ``pad`` voxels per axis, clipped to ``shape``."""
    a, b, c = (slice(max(0, s.start - m), min(d, s.stop + m)) for s, m, d in zip(sl, pad, shape, strict=True))
    return a, b, c


def _bottom_row(low: npt.NDArray[np.bool_]) -> float:
    """The last inferior row of the lowest body."""
    return float(np.nonzero(low.any(axis=(0, 2)))[0].max())


def _min_per_label(lab: npt.NDArray[np.integer], n: int, values: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """Smallest ``values`` under each label 1..n (index 0 and empty labels: inf)."""
    at = lab > 0
    out = np.full(n + 1, np.inf)
    np.minimum.at(out, lab[at], values[at])
    return out


def _lowest(
    cls: npt.NDArray[np.uint8], spacing_mm: tuple[float, float, float], low: npt.NDArray[np.bool_] | bool | None
) -> npt.NDArray[np.bool_] | None:
    """``low`` as given by the caller (an array or None = no body), or found when the caller passed ``False``."""
    return lowest_body(cls, spacing_mm) if low is False else low  # type: ignore[return-value]


def constrain_sacrum(
    cls: npt.NDArray[np.uint8],
    spacing_mm: tuple[float, float, float],
    report: CleanupReport | None = None,
    low: npt.NDArray[np.bool_] | bool | None = False,
) -> npt.NDArray[np.uint8]:
    """Unlabel sacrum voxels where no sacrum can be (see module docstring, step 2).

    Needs a body above it: without any body piece the sacrum is left as it is (the instance phase and the
    naming decide what an isolated sacrum is)."""
    sac = cls == C.SACRUM
    if not sac.any():
        return cls.copy()
    low = _lowest(cls, spacing_mm, low)
    if low is None:
        return cls.copy()
    out = cls.copy()
    sp = np.asarray(spacing_mm, dtype=np.float64)
    lp = np.nonzero(low)
    mid_row = float(np.mean(lp[1]))
    front = float(np.percentile(lp[0], 2))
    low_bottom = float(np.percentile(lp[1], 98))
    p_idx, i_idx, r_idx = np.nonzero(sac)
    bad = i_idx < mid_row
    slope = max(SACRUM_ANTERIOR_SLOPE, min(_front_slope(cls, low, spacing_mm), SACRUM_MAX_SLOPE))
    recede_mm = slope * np.clip(i_idx - low_bottom, 0.0, None) * sp[1]
    bad |= (front - p_idx) * sp[0] + recede_mm > SACRUM_ANTERIOR_MM
    mid_r = float(np.mean(lp[2]))
    bad |= np.abs(r_idx - mid_r) * sp[2] > SACRUM_LATERAL_MM
    ok_rows = i_idx[~bad]
    if ok_rows.size:
        bad |= (i_idx - float(ok_rows.min())) * sp[1] > SACRUM_LENGTH_MM
    keep = np.zeros(cls.shape, dtype=bool)
    keep[p_idx[~bad], i_idx[~bad], r_idx[~bad]] = True
    if keep.any():
        keep = _thick_and_touching(keep, cls, low, spacing_mm)
    out[sac & ~keep] = C.BG
    if report is not None:
        report.add(cls, out, "sacrum")
    return out


def _front_slope(
    cls: npt.NDArray[np.uint8], low: npt.NDArray[np.bool_], spacing_mm: tuple[float, float, float]
) -> float:
    """How many mm the column's anterior wall moves posteriorly per mm down over its lowest ``COLUMN_SLOPE_MM``
    (least-squares line through the front of the bodies near the lowest body's midline; 0 when unmeasurable)."""
    lp = np.nonzero(low)
    bottom, mid_r = float(lp[1].max()), float(np.mean(lp[2]))
    near = max(1, round(15.0 / spacing_mm[2]))
    lo_r, hi_r = max(0, round(mid_r) - near), round(mid_r) + near + 1
    body = np.isin(cls[:, :, lo_r:hi_r], (C.CORPUS, C.ENDPLATE))
    top = max(0, round(bottom - COLUMN_SLOPE_MM / spacing_mm[1]))
    rows, fronts = [], []
    for i in range(top, round(bottom) + 1):
        ps = np.nonzero(body[:, i, :].any(axis=1))[0]
        if ps.size:
            rows.append(i * spacing_mm[1])
            fronts.append(float(ps.min()) * spacing_mm[0])
    if len(rows) < 10:
        return 0.0
    return float(np.polyfit(np.asarray(rows), np.asarray(fronts), 1)[0])


def _thick_and_touching(
    sac: npt.NDArray[np.bool_],
    cls: npt.NDArray[np.uint8],
    low: npt.NDArray[np.bool_],
    spacing_mm: tuple[float, float, float],
) -> npt.NDArray[np.bool_]:
    """The sacrum voxels in thick pieces that touch the bottom of the column (lowest body and the discs around it)."""
    box = ndimage.find_objects(sac.astype(np.uint8))[0]
    pad = [int(np.ceil((SACRUM_CONTACT_MM + SACRUM_OPENING_MM) / s)) + 2 for s in spacing_mm]
    box = _padded_box(box, pad, sac.shape)
    s = sac[box]
    opened = ndimage.binary_opening(s, structure=_ball(SACRUM_OPENING_MM, spacing_mm))
    # regrow what the opening shaved off the thick pieces (within the opening radius, inside the sacrum)
    core = ndimage.binary_dilation(opened, structure=_ball(SACRUM_OPENING_MM + max(spacing_mm), spacing_mm)) & s
    if not core.any():
        return np.zeros(sac.shape, dtype=bool)
    rows = np.arange(box[1].start, box[1].stop)[None, :, None]
    near_rows = rows <= _bottom_row(low) + SACRUM_CONTACT_BELOW_MM / spacing_mm[1]
    column = low[box] | (((cls[box] == C.DISC) | (cls[box] == C.ENDPLATE)) & near_rows)
    dist = ndimage.distance_transform_edt(~column, sampling=spacing_mm) if column.any() else None
    kept = _touching_pieces(core, dist)
    if SACRUM_NECK_MM > SACRUM_OPENING_MM and kept.any():
        necked = ndimage.binary_opening(kept, structure=_ball(SACRUM_NECK_MM, spacing_mm))
        far = necked & ~_touching_pieces(necked, dist)
        if far.any():  # the cut-off pieces, with what the opening shaved off them, inside the sacrum
            grow = _ball(SACRUM_NECK_MM + max(spacing_mm), spacing_mm)
            near_far = ndimage.binary_dilation(far, structure=grow)
            near_kept = ndimage.binary_dilation(necked & ~far, structure=grow)
            kept &= ~near_far | near_kept
    out = np.zeros(sac.shape, dtype=bool)
    out[box] = kept
    return out


def _touching_pieces(mask: npt.NDArray[np.bool_], dist: npt.NDArray[np.floating] | None) -> npt.NDArray[np.bool_]:
    """The 26-connected pieces of ``mask`` that come within ``SACRUM_CONTACT_MM`` of the column (``dist``: distance
    to it, mm; None: no column, nothing touches)."""
    lab, n = cc3d.connected_components(mask.astype(np.uint8), connectivity=26, return_N=True)
    keep = np.zeros(n + 1, dtype=bool)
    if dist is not None and n:
        keep[1:] = _min_per_label(lab, n, dist)[1:] <= SACRUM_CONTACT_MM
    return np.asarray(keep[lab], dtype=bool)


def drop_bodies_below(
    cls: npt.NDArray[np.uint8],
    spacing_mm: tuple[float, float, float],
    report: CleanupReport | None = None,
    low: npt.NDArray[np.bool_] | bool | None = False,
) -> npt.NDArray[np.uint8]:
    """No vertebra below the sacrum's top (module docstring, step 2): a corpus/endplate piece that starts more
    than ``BODY_BELOW_LOWEST_MM`` below the lowest body becomes sacrum when the sacrum encloses it (at least
    ``BODY_ENCLOSED_FRACTION`` of the shell ``BODY_SHELL_MM`` around it is sacrum: a sacral body the network called
    corpus) and is unlabelled otherwise."""
    low = _lowest(cls, spacing_mm, low)
    body = np.isin(cls, (C.CORPUS, C.ENDPLATE))
    if low is None or not body.any():
        return cls.copy()
    start = _bottom_row(low) + BODY_BELOW_LOWEST_MM / spacing_mm[1]
    if start >= cls.shape[1] or not body[:, int(np.ceil(start)) :, :].any():
        return cls.copy()
    lab = cc3d.connected_components(body.astype(np.uint8), connectivity=26)
    sac = cls == C.SACRUM
    ball = _ball(BODY_SHELL_MM, spacing_mm)
    pad = [k // 2 + 1 for k in ball.shape]
    out = cls.copy()
    for k, sl in enumerate(ndimage.find_objects(lab), start=1):
        if sl is None or sl[1].start <= start:
            continue
        box = _padded_box(sl, pad, cls.shape)
        piece = lab[box] == k
        shell = ndimage.binary_dilation(piece, structure=ball) & ~body[box]
        enclosed = shell.any() and float(sac[box][shell].mean()) >= BODY_ENCLOSED_FRACTION
        out[box][piece] = C.SACRUM if enclosed else C.BG
    if report is not None:
        report.add(cls, out, "bodies below the column")
    return out


def constrain_discs(
    cls: npt.NDArray[np.uint8],
    spacing_mm: tuple[float, float, float],
    report: CleanupReport | None = None,
    low: npt.NDArray[np.bool_] | bool | None = False,
) -> npt.NDArray[np.uint8]:
    """Unlabel disc pieces that touch no bone or lie below the lumbosacral disc, and posterior elements far below
    the lowest body (module docstring, step 3)."""
    disc = cls == C.DISC
    bone = np.isin(cls, (C.CORPUS, C.ENDPLATE, C.SACRUM))
    if not disc.any() or not bone.any():
        return cls.copy()
    low = _lowest(cls, spacing_mm, low)
    bottom_mm = float(np.percentile(np.nonzero(low)[1], 98)) * spacing_mm[1] if low is not None else np.inf
    lab, n = cc3d.connected_components(disc.astype(np.uint8), connectivity=26, return_N=True)
    # distances to bone only matter up to DISC_CONTACT_MM: the transform runs in the discs' box grown by that much
    box = ndimage.find_objects(disc.astype(np.uint8))[0]
    pad = [int(np.ceil(DISC_CONTACT_MM / sp)) + 1 for sp in spacing_mm]
    box = _padded_box(box, pad, cls.shape)
    sub_bone, sub_lab = bone[box], lab[box]
    at = sub_lab > 0
    nearest_mm = np.full(n + 1, np.inf)
    if sub_bone.any():
        nearest_mm = _min_per_label(sub_lab, n, ndimage.distance_transform_edt(~sub_bone, sampling=spacing_mm))
    row_idx = np.nonzero(at)[1] + box[1].start
    rows = np.bincount(sub_lab[at], weights=row_idx, minlength=n + 1) / np.maximum(
        np.bincount(sub_lab[at], minlength=n + 1), 1
    )
    keep = (nearest_mm <= DISC_CONTACT_MM) & (rows * spacing_mm[1] <= bottom_mm + DISC_BELOW_LOWEST_MM)
    keep[0] = False
    out = cls.copy()
    out[disc & ~keep[lab]] = C.BG
    if low is not None:
        cut = int(np.ceil((bottom_mm + POSTERIOR_BELOW_LOWEST_MM) / spacing_mm[1]))
        below = out[:, cut:, :]
        below[np.isin(below, C.POSTERIOR_CLASSES)] = C.BG
    if report is not None:
        report.add(cls, out, "below the column")
    return out


def clean_anatomy(
    cls: npt.NDArray[np.uint8], spacing_mm: tuple[float, float, float]
) -> tuple[npt.NDArray[np.uint8], CleanupReport]:
    """Column connectivity, sacrum and disc constraints; returns the cleaned class map and what was removed."""
    report = CleanupReport(voxel_mm3=float(np.prod(spacing_mm)))
    if not cls.any():
        return cls.copy(), report
    box = ndimage.find_objects((cls > 0).astype(np.uint8))[0]
    sub = np.ascontiguousarray(cls[box])
    sub = keep_column(sub, spacing_mm, report)
    low = lowest_body(sub, spacing_mm)  # the sacrum step leaves bodies alone: one search serves both steps
    sub = constrain_sacrum(sub, spacing_mm, report, low=low)
    sub = drop_bodies_below(sub, spacing_mm, report, low=low)
    sub = constrain_discs(sub, spacing_mm, report, low=low)
    out = cls.copy()
    out[box] = sub
    return out, report


#: instance-map values that own a semantic voxel (temporary map of ``instances.build_instances``)
def drop_unassigned(
    cls: npt.NDArray[np.uint8], instances: npt.NDArray[np.integer], report: CleanupReport | None = None
) -> None:
    """Unlabel (in place) body, posterior-element and sacrum voxels that no instance took.

    Discs and endplates keep their class: those above the top vertebra legitimately carry instance offset + 0.
    """
    owned = np.isin(cls, (C.CORPUS, C.SACRUM, *C.POSTERIOR_CLASSES))
    gone = owned & (np.asarray(instances) == 0)
    if not gone.any():
        return
    before = cls.copy() if report is not None else cls
    cls[gone] = C.BG
    if report is not None:
        report.add(before, cls, "unassigned")
