"""Endplates as the layer of a vertebral body that faces a disc (the SPINEPS convention, made explicit).

SPINEPS labels an endplate (62) as the thin layer of the vertebral body next to an intervertebral disc. In
the one real sagittal MRI map with that label here (``label_only_refs/panoptica-semantic_ref``, 0.59 mm
along the spine) every endplate voxel lies within 1.8 mm of a disc along the superior-inferior axis, and
"body voxels within 1.2 mm of a disc" reproduces its endplates at Dice 0.81 (``docs/decisions/
spine-endplate-layer.md``). The network draws almost no endplate on real MR, so after the instance phase and
the naming each vertebra's body (corpus + endplate) is relabelled: in each sagittal column, the last
``thickness_mm`` (:func:`endplate_thickness_mm`: one input voxel along the spine, at least ``ENDPLATE_MM``; at most
a third of the run) of a body run whose end faces a disc, directly or across at most ``ENDPLATE_GAP_MM`` of classes
other than body, become endplate; every other body voxel is corpus.

The body map (corpus + endplate, ``InstanceResult.body``), every body metric and every name are unchanged; the
layer's voxels leave their vertebra's instance id for the id of the disc they face (as in SPINEPS), so a vertebra's
volume in the table and its corpus centre exclude them. An endplate facing a disc below a body named S1 (sacral
segments named from the disc pattern) has no level and gets instance 0, as a disc there does.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from neurospine.spine import classes as C
from neurospine.spine.instances import ENDPLATE_ID_OFFSET, InstanceResult

#: thinnest endplate layer (mm along the superior-inferior axis); the pipeline uses at least one input voxel
ENDPLATE_MM = 1.0
#: a body end still faces a disc across at most this much of another class (the network leaves thin gaps)
ENDPLATE_GAP_MM = 3.0

_ROW_AXIS = 1  # PIR model grid: axis 1 runs head to foot


def _run_depth(mask: npt.NDArray[np.bool_], reverse: bool) -> npt.NDArray[np.int32]:
    """Per voxel of ``mask``: how many mask voxels from it to the end of its run along the rows (1 = the end).

    ``reverse`` False counts toward higher rows (the foot), True toward lower rows (the head)."""
    depth = np.zeros(mask.shape, dtype=np.int32)
    n = mask.shape[_ROW_AXIS]
    rows = range(n - 1, -1, -1) if not reverse else range(n)
    step = 1 if not reverse else -1
    for j in rows:
        nxt = j + step
        here = mask[:, j, :]
        if 0 <= nxt < n:
            depth[:, j, :] = np.where(here, depth[:, nxt, :] + 1, 0)
        else:
            depth[:, j, :] = here
    return depth


def _faces_disc(
    body: npt.NDArray[np.bool_], disc: npt.NDArray[np.bool_], gap_rows: int, reverse: bool
) -> npt.NDArray[np.bool_]:
    """Per body voxel: does its run end (toward the foot, or the head if ``reverse``) face a disc within
    ``gap_rows`` rows of the same column?"""
    n = body.shape[_ROW_AXIS]
    big = np.iinfo(np.int32).max // 2
    disc_dist = np.full(body.shape[0:1] + body.shape[2:], big, dtype=np.int32)  # rows to the nearest disc ahead
    faces = np.zeros(body.shape, dtype=bool)
    rows = range(n - 1, -1, -1) if not reverse else range(n)
    step = 1 if not reverse else -1
    for j in rows:
        nxt = j + step
        if 0 <= nxt < n:
            ends_here = body[:, j, :] & ~body[:, nxt, :]
            faces[:, j, :] = np.where(ends_here, disc_dist <= gap_rows, body[:, j, :] & faces[:, nxt, :])
        disc_dist = np.where(disc[:, j, :], 0, np.where(body[:, j, :], big, disc_dist + 1))
    return faces


def endplate_faces(
    classes: npt.NDArray[np.uint8],
    spacing_mm: tuple[float, float, float],
    thickness_mm: float = ENDPLATE_MM,
    gap_mm: float = ENDPLATE_GAP_MM,
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """The body voxels of the disc-facing layers: (upper faces, facing a disc above; lower faces, below)."""
    cls = np.asarray(classes)
    body = (cls == C.CORPUS) | (cls == C.ENDPLATE)
    upper = np.zeros(cls.shape, dtype=bool)
    lower = np.zeros(cls.shape, dtype=bool)
    disc = cls == C.DISC
    if not body.any() or not disc.any():
        return upper, lower
    rows = np.nonzero(body.any(axis=(0, 2)) | disc.any(axis=(0, 2)))[0]
    lo, hi = int(rows.min()), int(rows.max()) + 1
    sub_body, sub_disc = body[:, lo:hi, :], disc[:, lo:hi, :]
    row_mm = float(spacing_mm[_ROW_AXIS])
    layer_rows = max(1, math.floor(thickness_mm / row_mm + 0.5))
    gap_rows = math.floor(gap_mm / row_mm + 0.5)
    down, up = _run_depth(sub_body, False), _run_depth(sub_body, True)
    # a run's layer is at most a third of it (at least one row): a thin piece never turns into endplate only
    rows_here = np.minimum(layer_rows, np.maximum(1, (down + up - 1) // 3))
    for reverse, depth, out in ((False, down, lower), (True, up, upper)):
        near_end = depth <= rows_here
        out[:, lo:hi, :] = sub_body & near_end & _faces_disc(sub_body, sub_disc, gap_rows, reverse)
    return upper, lower


def endplate_thickness_mm(input_row_mm: float) -> float:
    """The layer the pipeline draws: one input voxel along the spine, at least ``ENDPLATE_MM`` (a thinner layer is
    partly lost by the nearest-neighbour return to the input grid)."""
    return max(ENDPLATE_MM, float(input_row_mm))


def relabel_endplates(
    classes: npt.NDArray[np.uint8],
    inst: InstanceResult,
    spacing_mm: tuple[float, float, float],
    thickness_mm: float = ENDPLATE_MM,
    gap_mm: float = ENDPLATE_GAP_MM,
) -> None:
    """Give every vertebra's body the endplate layer, in place, after the instance phase and the naming.

    Only body voxels a vertebra holds change, and only between corpus and endplate: the body map (``inst.body``)
    and the names stay as they were. A lower face of vertebra k is endplate 200+k, an upper face 200+(k-1): the
    SPINEPS convention that an endplate carries the id of the disc it faces."""
    upper, lower = endplate_faces(classes, spacing_mm, thickness_mm, gap_mm)
    body_id = inst.body.astype(np.int32)
    held = ((classes == C.CORPUS) | (classes == C.ENDPLATE)) & (body_id > 0)
    classes[held] = C.CORPUS
    inst.instances[held] = body_id[held]
    low = lower & held
    up = upper & held & ~low
    classes[low | up] = C.ENDPLATE
    inst.instances[low] = ENDPLATE_ID_OFFSET + body_id[low]
    inst.instances[up] = ENDPLATE_ID_OFFSET + body_id[up] - 1
