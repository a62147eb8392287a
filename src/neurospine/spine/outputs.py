"""Output files of the spine pipeline: centroid JSON (VerSe/TPTBox style), CSV table, QC snapshot.

Centroids follow the VerSe convention read by TPTBox: a list whose first element gives the axis
``direction`` (here ``P, I, R``) and ``zoom``; then one ``{"label", "X", "Y", "Z"}`` per vertebra in voxel
coordinates of the input image reoriented to PIR (input resolution). World (RAS mm) coordinates are
added under ``"ras_mm"``.

Centroids are those of the vertebral *body* (corpus voxels, SPINEPS/TPTBox ``ctd`` convention), in the JSON
and in the CSV alike; the sacrum's is that of the whole sacrum and a disc's that of the whole disc. The CSV
column ``centroid_of`` says which, per row ("vertebral body", "sacrum", "disc", or "whole vertebra" for a
vertebra without body voxels, which the JSON leaves out). ``naming_flag`` is 1 on rows whose level name is
uncertain: every row of a positional naming, and the L1-L6 vertebrae and discs of a 24-vertebra column whose
extra vertebra (L6 or T13) was not given by the user; ``naming_note`` says why.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.io import Volume, atomic_path, write_text_atomic
from neurospine.labels import DISC_OFFSET, ENDPLATE_OFFSET, instance_name, vertebra_name

log = logging.getLogger(__name__)

CTD_DIRECTION = ("P", "I", "R")


@dataclass(frozen=True)
class StructureRow:
    """One vertebra, sacrum, disc or endplate of the instance map."""

    label: int
    level: str
    kind: str  # vertebra | sacrum | disc | endplate
    volume_mm3: float
    centroid_ras_mm: tuple[float, float, float]
    body_centroid_vox: tuple[float, float, float] | None  # input voxel coordinates (corpus centroid)
    body_centroid_ras_mm: tuple[float, float, float] | None = None  # the same in world (RAS mm) coordinates


def structure_rows(
    instances: npt.NDArray[np.integer], semantic: npt.NDArray[np.integer], ref: Volume
) -> list[StructureRow]:
    """Rows for every label of the ``seg-vert`` map on the input grid, cranial to caudal."""
    inst = np.asarray(instances)
    labels = [int(v) for v in np.unique(inst) if v != 0]
    if not labels:
        return []
    ones = np.ones(inst.shape, dtype=np.uint8)
    counts = ndimage.sum_labels(ones, inst, labels)
    coms = ndimage.center_of_mass(ones, inst, labels)
    corpus = np.where(np.isin(semantic, (49, 50, 26)), inst, 0)
    with np.errstate(invalid="ignore", divide="ignore"):  # discs have no corpus: NaN, handled below
        body_coms = ndimage.center_of_mass(ones, corpus, labels)
    vox = ref.voxel_volume_mm3
    rows = []
    for lab, cnt, com, bcom in zip(labels, counts, coms, body_coms, strict=True):
        if lab >= ENDPLATE_OFFSET:
            kind = "endplate"
        elif lab > DISC_OFFSET:
            kind = "disc"
        elif lab == 26:
            kind = "sacrum"
        else:
            kind = "vertebra"
        try:
            level = instance_name(lab) if kind in ("disc", "endplate") else vertebra_name(lab)
        except KeyError:
            level = f"unnamed_{lab}"
        ras = ref.world_coords(np.array(com))[0]
        body = (float(bcom[0]), float(bcom[1]), float(bcom[2])) if np.all(np.isfinite(bcom)) else None
        body_ras = None
        if body is not None:
            b = ref.world_coords(np.array(body))[0]
            body_ras = (float(b[0]), float(b[1]), float(b[2]))
        rows.append(
            StructureRow(
                lab, level, kind, float(cnt) * vox, (float(ras[0]), float(ras[1]), float(ras[2])), body, body_ras
            )
        )
    return rows


def _to_pir_voxels(ref: Volume, ijk: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    start = nib.orientations.io_orientation(ref.affine)
    target = nib.orientations.axcodes2ornt(CTD_DIRECTION)
    fwd = nib.orientations.ornt_transform(start, target)
    pir_aff = ref.affine @ nib.orientations.inv_ornt_aff(fwd, ref.shape)
    world = ref.affine[:3, :3] @ ijk + ref.affine[:3, 3]
    return np.asarray(np.linalg.solve(pir_aff[:3, :3], world - pir_aff[:3, 3]))


def write_centroids(path: Path, rows: list[StructureRow], ref: Volume, info: dict[str, Any]) -> Path:
    """VerSe/TPTBox centroid JSON of vertebrae and sacrum (corpus centroids)."""
    start = nib.orientations.io_orientation(ref.affine)
    fwd = nib.orientations.ornt_transform(start, nib.orientations.axcodes2ornt(CTD_DIRECTION))
    zoom = [float(ref.spacing_mm[int(np.nonzero(fwd[:, 0] == k)[0][0])]) for k in range(3)]
    out: list[dict[str, Any]] = [{"direction": list(CTD_DIRECTION), "zoom": zoom, "info": info}]
    for row in rows:
        if row.kind not in ("vertebra", "sacrum") or row.body_centroid_vox is None or row.body_centroid_ras_mm is None:
            continue
        p, i, r = _to_pir_voxels(ref, np.array(row.body_centroid_vox))
        ras = row.body_centroid_ras_mm
        out.append(
            {
                "label": row.label,
                "level": row.level,
                "X": round(float(p), 2),
                "Y": round(float(i), 2),
                "Z": round(float(r), 2),
                "ras_mm": [round(float(v), 2) for v in ras],
            }
        )
    return write_text_atomic(path, json.dumps(out, indent=1) + "\n")


CSV_COLUMNS = (
    "level",
    "label",
    "structure",
    "volume_mm3",
    "centroid_x_mm",
    "centroid_y_mm",
    "centroid_z_mm",
    "naming",
    "naming_flag",
    # added in this version: appended so that readers by position keep working
    "centroid_of",
    "naming_note",
)

POSITIONAL_NOTE = "positional naming: no sacrum or C2 anchor used (see the naming flags in the ctd JSON)"


def table_centroid(row: StructureRow) -> tuple[tuple[float, float, float], str]:
    """The CSV centroid of a row (RAS mm) and what it is the centroid of: the vertebral body for a vertebra
    (as in the ctd JSON), the whole sacrum or disc, the whole vertebra only when no body voxel was found."""
    if row.kind == "vertebra":
        if row.body_centroid_ras_mm is not None:
            return row.body_centroid_ras_mm, "vertebral body"
        return row.centroid_ras_mm, "whole vertebra"
    return row.centroid_ras_mm, row.kind


def write_table(
    path: Path, rows: list[StructureRow], *, positional: bool, notes: Mapping[int, str] | None = None
) -> Path:
    """CSV: one row per vertebra, sacrum and disc (endplates are in the mask, not the table).

    Centroids in RAS mm: the vertebral body's for vertebrae (as in the ctd JSON), see :func:`table_centroid`.
    ``notes`` (label -> text) marks rows whose level name is uncertain (``naming_flag`` 1); under a positional
    naming every row is flagged."""
    notes = notes or {}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for row in rows:
        if row.kind == "endplate":
            continue
        (x, y, z), centroid_of = table_centroid(row)
        note = POSITIONAL_NOTE if positional else notes.get(row.label, "")
        w.writerow(
            [
                row.level,
                row.label,
                row.kind,
                f"{row.volume_mm3:.1f}",
                f"{x:.2f}",
                f"{y:.2f}",
                f"{z:.2f}",
                "positional" if positional else "anchored",
                int(bool(note)),
                centroid_of,
                note,
            ]
        )
    return write_text_atomic(path, buf.getvalue())


def _colour(label: int) -> tuple[int, int, int]:
    if label >= ENDPLATE_OFFSET:
        return (120, 220, 220)
    if label > DISC_OFFSET:
        return (60, 200, 90)
    if label == 26:
        return (230, 170, 60)
    rng = np.random.default_rng(label * 7919)
    c = rng.integers(60, 256, 3)
    return (int(c[0]), int(c[1]), int(c[2]))


def write_snapshot(
    path: Path,
    image_pir: npt.NDArray[np.floating],
    inst_pir: npt.NDArray[np.integer],
    spacing_pir: tuple[float, float, float],
    names: dict[int, str],
    title: str,
) -> Path:
    """Mid-sagittal image and the same slice with the instance overlay and level names (PNG)."""
    from PIL import Image, ImageDraw

    img = np.asarray(image_pir, dtype=np.float32)
    inst = np.asarray(inst_pir)
    vert = (inst > 0) & (inst < DISC_OFFSET)
    if vert.any():
        r = round(float(np.nonzero(vert)[2].mean()))
    else:
        r = img.shape[2] // 2
    sl = img[:, :, r].T  # rows = I (top = superior), cols = P (left = anterior)
    lo, hi = np.percentile(img, [0.5, 99.5])
    grey = np.clip((sl - lo) / max(hi - lo, 1e-6), 0, 1)
    lab = inst[:, :, r].T
    # resample to square pixels, at least 512 px tall
    sp_p, sp_i = spacing_pir[0], spacing_pir[1]
    height_mm, width_mm = lab.shape[0] * sp_i, lab.shape[1] * sp_p
    scale = max(1.0, 512.0 / height_mm)
    size = (max(1, round(width_mm * scale)), max(1, round(height_mm * scale)))
    base = Image.fromarray((grey * 255).astype(np.uint8)).resize(size, Image.Resampling.BILINEAR).convert("RGB")
    lab_img = np.asarray(Image.fromarray(lab.astype(np.int32)).resize(size, Image.Resampling.NEAREST))
    rgb = np.asarray(base, dtype=np.float32)
    over = rgb.copy()
    for value in np.unique(lab_img):
        if value == 0:
            continue
        over[lab_img == value] = 0.45 * rgb[lab_img == value] + 0.55 * np.array(_colour(int(value)))
    panel = Image.fromarray(over.astype(np.uint8))
    draw = ImageDraw.Draw(panel)
    for value, name in names.items():
        m = lab_img == value
        if not m.any():
            continue
        ys, xs = np.nonzero(m)
        draw.text((int(xs.min()) + 2, int(ys.mean()) - 5), name, fill=(255, 255, 255))
    canvas = Image.new("RGB", (size[0] * 2 + 10, size[1] + 22), (0, 0, 0))
    canvas.paste(base, (0, 22))
    canvas.paste(panel, (size[0] + 10, 22))
    ImageDraw.Draw(canvas).text((4, 4), title[:120], fill=(255, 255, 255))
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return path
