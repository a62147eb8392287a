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
from neurospine.spine.centres import label_centres, label_stats
from neurospine.spine.naming import CONFIDENT

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
    body_volume_mm3: float | None = None  # vertebral body (corpus + its two endplate layers); vertebra rows only
    #: sides of the image (superior, inferior, left, right, anterior, posterior) the structure reaches: cut by the
    #: field of view there, so its volume is partial ("" when it lies inside)
    field_edge: str = ""
    body_field_edge: str = ""  # the same for the vertebral body (vertebra rows only)


_SIDES = {"R": "right", "L": "left", "A": "anterior", "P": "posterior", "S": "superior", "I": "inferior"}
_OPPOSITE = {"R": "L", "L": "R", "A": "P", "P": "A", "S": "I", "I": "S"}


def _union(a: str, b: str) -> str:
    """Two ";"-joined side lists as one (a vertebra's own id leaves out its endplates, which its body holds)."""
    return ";".join(dict.fromkeys(x for x in (*a.split(";"), *b.split(";")) if x))


def field_edges(labels_map: npt.NDArray[np.integer], axcodes: tuple[str, str, str]) -> dict[int, str]:
    """For each label of ``labels_map`` that reaches the outermost voxel layer of the array, the sides it reaches
    (anatomical names from ``axcodes``, the direction each voxel axis points to), joined by ";"."""
    arr = np.asarray(labels_map)
    sides: dict[int, list[str]] = {}
    for axis, code in enumerate(axcodes):
        for index, side in ((0, _SIDES[_OPPOSITE[code]]), (arr.shape[axis] - 1, _SIDES[code])):
            for lab in np.unique(np.take(arr, index, axis=axis)):
                if lab != 0 and side not in sides.setdefault(int(lab), []):
                    sides[int(lab)].append(side)
    return {lab: ";".join(v) for lab, v in sides.items()}


def structure_rows(
    instances: npt.NDArray[np.integer],
    semantic: npt.NDArray[np.integer],
    ref: Volume,
    bodies: npt.NDArray[np.integer] | None = None,
) -> list[StructureRow]:
    """Rows for every label of the ``seg-vert`` map on the input grid, cranial to caudal. ``bodies``: the body map
    by level id (corpus + endplates of each vertebra, ``SpineSegmentation.body_input``) for ``body_volume_mm3``."""
    inst = np.asarray(instances)
    labels = [int(v) for v in np.unique(inst) if v != 0]
    if not labels:
        return []
    counts, coms = label_stats(inst, labels)
    corpus = np.where(np.isin(semantic, (49, 50, 26)), inst, 0)
    body_coms = label_centres(corpus, labels)  # discs have no corpus: NaN rows, handled below
    vox = ref.voxel_volume_mm3
    body_counts: dict[int, int] = {}
    body_edges: dict[int, str] = {}
    if bodies is not None:
        ids, n = np.unique(np.asarray(bodies), return_counts=True)
        body_counts = {int(i): int(c) for i, c in zip(ids, n, strict=True) if i != 0}
        body_edges = field_edges(bodies, ref.axcodes)
    edges = field_edges(inst, ref.axcodes)
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
        body_mm3 = float(body_counts.get(lab, 0)) * vox if bodies is not None and kind == "vertebra" else None
        rows.append(
            StructureRow(
                lab,
                level,
                kind,
                float(cnt) * vox,
                (float(ras[0]), float(ras[1]), float(ras[2])),
                body,
                body_ras,
                body_mm3,
                _union(edges.get(lab, ""), body_edges.get(lab, "") if kind == "vertebra" else ""),
                body_edges.get(lab, "") if kind == "vertebra" else "",
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
    "body_volume_mm3",
    "field_edge",
    "body_field_edge",
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
                "" if row.body_volume_mm3 is None else f"{row.body_volume_mm3:.1f}",
                row.field_edge,
                row.body_field_edge,
            ]
        )
    return write_text_atomic(path, buf.getvalue())


def _colour(label: int) -> tuple[int, int, int]:
    if label >= ENDPLATE_OFFSET:
        return ENDPLATE_RGB
    if label > DISC_OFFSET:
        return DISC_RGB
    if label == 26:
        return SACRUM_RGB
    return VERTEBRA_RGB[label % len(VERTEBRA_RGB)]


#: vertebra colours cycle through hues kept apart from the disc green, sacrum orange and endplate cyan, so
#: neighbouring levels differ and no vertebra reads as a disc
VERTEBRA_RGB: tuple[tuple[int, int, int], ...] = (
    (220, 60, 60),
    (80, 110, 230),
    (210, 80, 210),
    (240, 220, 70),
    (150, 90, 230),
    (240, 120, 160),
    (140, 140, 255),
    (180, 60, 120),
)
DISC_RGB = (60, 200, 90)
ENDPLATE_RGB = (120, 220, 220)
SACRUM_RGB = (230, 170, 60)
#: smallest snapshot height (px); a whole spine is about 600 mm tall
SNAPSHOT_MIN_PX = 640


def naming_sentence(anchor: str, confidence: float, doubt: str = "", *, uncertain: bool = False) -> str:
    """How the level names were found, in plain words, for the snapshot and messages. Below ``naming.CONFIDENT``, or
    when some names are uncertain (``uncertain``: those carry a "?" on the snapshot), the sentence asks for a check
    and gives ``doubt`` (why the names may be wrong)."""
    conf = f"confidence {confidence:.2f}"
    if anchor == "none":
        return (
            "No vertebra found, so nothing is named: the field of view may hold no whole vertebral body, or this is "
            "not a spine image; check the image."
        )
    if anchor == "positional":
        return f"No sacrum or C2 visible: levels are a guess from the column's shape ({conf}); check them."
    if anchor == "S1":  # as a report says it: without C2 the count of lumbar vertebrae is an assumption
        how = "Levels counted up from the sacrum, five lumbar vertebrae assumed (no C2 found to check the count)"
    elif anchor == "C2":
        how = "Levels counted down from C2"
    elif anchor == "S1+C2":
        how = "Levels counted from the sacrum and C2, both in view"
    else:
        how = f"Levels named from {anchor}"
    why = f" ({doubt})" if doubt else ""
    if confidence < CONFIDENT:
        return f"{how}; {conf}: names marked ? may be one or more levels off{why}; check them."
    if uncertain:
        return f"{how}; {conf}: names marked ? are uncertain{why}; check them."
    return f"{how}; {conf}."


def needs_checking(naming_line: str | None) -> bool:
    """Whether a naming sentence asks the reader to check the names (drawn in yellow)."""
    return bool(naming_line) and str(naming_line).endswith(("check them.", "check the image."))


def _label_anchors(
    lab_img: npt.NDArray[np.integer],
    body_img: npt.NDArray[np.bool_] | None,
    names: Mapping[int, str],
    off_slice: Mapping[int, tuple[float, float]],
) -> list[tuple[str, float, float, bool]]:
    """(name, x, y, on_slice) at the centroid of each named vertebra's body on the slice (its largest piece).

    A vertebra that does not cross the slice is placed at its 3D centroid (``off_slice``, in panel pixels)
    and marked ``on_slice=False``.
    """
    out = []
    for value, name in names.items():
        if value <= 0 or value >= DISC_OFFSET:
            continue
        m = lab_img == value
        if body_img is not None and (m & body_img).any():
            m = m & body_img
        if not m.any():
            if value in off_slice:
                out.append((name, *off_slice[value], False))
            continue
        comps, n = ndimage.label(m)
        if n > 1:
            sizes = np.bincount(comps.ravel())[1:]
            m = comps == (int(np.argmax(sizes)) + 1)
        ys, xs = np.nonzero(m)
        out.append((name, float(xs.mean()), float(ys.mean()), True))
    return out


def _legend_items(present: list[int], off_slice: bool) -> list[tuple[str, list[tuple[int, int, int]]]]:
    vert_colours = [_colour(v) for v in present if 0 < v < DISC_OFFSET and v != 26][:3] or [_colour(20)]
    items: list[tuple[str, list[tuple[int, int, int]]]] = [("vertebra (one colour each)", vert_colours)]
    if 26 in present:
        items.append(("sacrum", [SACRUM_RGB]))
    items += [("disc", [DISC_RGB]), ("endplate", [ENDPLATE_RGB])]
    if off_slice:
        items.append(("grey name: vertebra off this slice, at its centre", []))
    return items


def write_snapshot(
    path: Path,
    image_pir: npt.NDArray[np.floating],
    inst_pir: npt.NDArray[np.integer],
    spacing_pir: tuple[float, float, float],
    names: dict[int, str],
    title: str,
    *,
    naming_line: str | None = None,
    body_pir: npt.NDArray[np.bool_] | None = None,
) -> Path:
    """Mid-sagittal slice, plain and with the instance overlay, for a reader without the manual (PNG).

    Header: ``title`` and ``naming_line`` (how the levels were named, :func:`naming_sentence`). Panels:
    orientation letters (S/I/A/P), a 10 mm scale bar, level names at the vertebral-body centroids (moved
    apart where they would overlap, with a leader line back to the body; ``body_pir`` marks body voxels,
    else the whole vertebra is used). Footer: the colour legend.
    """
    from PIL import Image, ImageDraw

    from neurospine import drawing as D

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
    # resample to square pixels, at least SNAPSHOT_MIN_PX tall
    sp_p, sp_i = spacing_pir[0], spacing_pir[1]
    height_mm, width_mm = lab.shape[0] * sp_i, lab.shape[1] * sp_p
    scale = max(1.0, SNAPSHOT_MIN_PX / height_mm)  # px per mm
    size = (max(1, round(width_mm * scale)), max(1, round(height_mm * scale)))
    base = Image.fromarray((grey * 255).astype(np.uint8)).resize(size, Image.Resampling.BILINEAR).convert("RGB")
    lab_img = np.asarray(Image.fromarray(lab.astype(np.int32)).resize(size, Image.Resampling.NEAREST))
    body_img = None
    if body_pir is not None:
        body_sl = np.asarray(body_pir)[:, :, r].T.astype(np.uint8)
        body_img = np.asarray(Image.fromarray(body_sl).resize(size, Image.Resampling.NEAREST)) > 0
    off_slice: dict[int, tuple[float, float]] = {}
    missing = [int(v) for v in names if 0 < v < DISC_OFFSET and not (lab == v).any()]
    if missing:  # one labelled pass for every vertebra off this slice (NaN for those absent from the volume)
        with np.errstate(invalid="ignore", divide="ignore"):
            coms = ndimage.center_of_mass(vert, inst, missing)
        for value, c in zip(missing, coms, strict=True):
            if np.isfinite(c[0]):  # (P, I, R) voxels
                off_slice[value] = ((c[0] + 0.5) * sp_p * scale, (c[1] + 0.5) * sp_i * scale)
    rgb = np.asarray(base, dtype=np.float32)
    over = rgb.copy()
    present = [int(v) for v in np.unique(lab_img) if v != 0]
    for value in present:
        over[lab_img == value] = 0.45 * rgb[lab_img == value] + 0.55 * np.array(_colour(value))
    panel = Image.fromarray(over.astype(np.uint8))

    margin = D.FONT_PX + 6  # room for the orientation letters around each panel
    gap = 2 * margin
    width = max(2 * size[0] + gap + 2 * margin, 440)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    header = D.wrap_to_width(probe, title, width - 8)
    n_title = len(header)
    header += D.wrap_to_width(probe, naming_line or "", width - 8)
    line_h = D.FONT_PX + 4
    top = 4 + line_h * len(header) + 4 + margin
    items = _legend_items(present, bool(off_slice))
    foot = margin + 4 + D.legend(probe, (6, 0), items, max_x=width - 4) + 4
    canvas, draw = D.new_canvas(width, top + size[1] + foot)
    x_left = (width - (2 * size[0] + gap)) // 2
    x_right = x_left + size[0] + gap
    canvas.paste(base, (x_left, top))
    canvas.paste(panel, (x_right, top))
    guess = needs_checking(naming_line)
    for n, line in enumerate(header):
        D.outlined_text(draw, (4, 4 + n * line_h), line, fill=D.YELLOW if n >= n_title and guess else D.WHITE)

    # level names at body centroids, spread apart vertically
    anchors = _label_anchors(lab_img, body_img, names, off_slice)
    text_h = D.FONT_PX + 2
    ys = D.spread_labels([y - text_h / 2 for _n, _x, y, _on in anchors], text_h, 0, size[1])
    for (name, x, y, on_slice), ty in zip(anchors, ys, strict=True):
        tw, _ = D.text_size(draw, name)
        tx = min(max(x - tw / 2, 0), size[0] - tw)
        cx, cy = x_right + x, top + y
        colour = D.WHITE if on_slice else D.GREY
        if abs(ty + text_h / 2 - y) > text_h / 2:
            draw.line((cx, cy, x_right + tx + tw / 2, top + ty + text_h / 2), fill=colour, width=1)
        draw.ellipse((cx - 2, cy - 2, cx + 2, cy + 2), fill=colour, outline=D.BLACK)
        D.outlined_text(draw, (x_right + tx, top + ty), name, fill=colour)

    for x0 in (x_left, x_right):
        D.orientation_letters(
            draw, (x0 - margin, top - margin, x0 + size[0] + margin, top + size[1] + margin), "S", "I", "A", "P"
        )
    D.scale_bar(draw, (x_left + 6, top + size[1] - 6), scale, 10.0)
    D.legend(draw, (6, top + size[1] + margin + 4), items, max_x=width - 4)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return path
