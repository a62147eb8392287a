"""Training and evaluation samples on the model grid (numpy only; reads ``../shared/data``).

Every sample is a canonical-layout 2D image (rows superior -> inferior, columns anterior -> posterior)
resampled to ``MODEL_PIXEL_MM`` and a target map with these codes:

- ``0`` background, ``1`` vertebral body, ``2`` intervertebral disc (definite labels);
- ``3`` "background or disc": next to bodies in sets without disc labels (marginal loss);
- ``255`` ignore: rows above/below the annotated extent (unlabelled vertebrae there) and a one-pixel
  band around pseudo-disc labels.

Sets with bodies only (fcs VB2/VB3, fewshot CT) get *pseudo-disc* labels: the pixels inside the convex
hull of two consecutive bodies and outside both (the gap the vesal annotators label as disc). They are
training labels only; disc Dice is measured only against real disc annotations.

Subject-wise split (fixed): vesal 0-14 train / 15-19 test; VB3 27-31 and VB2 12-14 test; VB1 (other
sites, pathology) and IVD test only; fewshot CT 11, 13 train / 36 test; tptbox CT test only.
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import numpy.typing as npt
from scipy import ndimage
from scipy.spatial import Delaunay

from neurospine.slice2d.io2d import load_input, model_shape, resize2d, unknown_spacing_mm
from neurospine.slice2d.normalize import normalize_image

log = logging.getLogger(__name__)

BG, BODY, DISC, BG_OR_DISC, IGNORE = 0, 1, 2, 3, 255

VESAL_SKIP = {0, 1, 5, 10, 13}  # empty or disc-only masks
VESAL_TEST = set(range(15, 20))
VB3_TEST = {"vb3-27", "vb3-28", "vb3-29", "vb3-30", "vb3-31"}
VB2_TEST = {"vb2-12", "vb2-13", "vb2-14"}
FEWSHOT_TRAIN = ("fst-11", "fst-13")
FEWSHOT_TEST = ("fst-36",)
SLICE_OFFSETS = (-4, -2, 0, 2, 4)


@dataclass
class Sample:
    image: npt.NDArray[np.float32]  # [0, 1], model grid
    target: npt.NDArray[np.uint8]  # codes above, model grid
    subject: str
    source: str
    modality: str
    discs_labelled: bool


def _nii(path: str) -> Any:
    """nibabel image (typed loosely: nibabel's stubs lack the NIfTI attributes)."""
    return nib.load(path)


# ---- label helpers --------------------------------------------------------------------------


def _hull_fill(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    pts = np.argwhere(mask)
    if len(pts) < 4 or np.linalg.matrix_rank(pts - pts.mean(0)) < 2:
        return mask.copy()
    lo, hi = pts.min(0), pts.max(0) + 1
    rr, cc = np.mgrid[lo[0] : hi[0], lo[1] : hi[1]]
    grid = np.stack([rr.ravel(), cc.ravel()], 1)
    inside = Delaunay(pts).find_simplex(grid) >= 0
    out = np.zeros_like(mask)
    out[lo[0] : hi[0], lo[1] : hi[1]] = inside.reshape(rr.shape)
    return out


def body_instances(bodies: npt.NDArray[np.generic], min_px: int = 30) -> list[npt.NDArray[np.bool_]]:
    """Body masks ordered superior -> inferior (instance ids if given, else connected components)."""
    arr = np.asarray(bodies)
    ids = [int(v) for v in np.unique(arr) if v != 0]
    masks: list[npt.NDArray[np.bool_]] = []
    if len(ids) > 1:
        for v in ids:
            m = arr == v
            if m.sum() >= min_px:
                masks.append(m)
    else:
        lab, n = ndimage.label(arr > 0)
        for i in range(1, n + 1):
            m = lab == i
            if m.sum() >= min_px:
                masks.append(m)
    masks.sort(key=lambda m: float(np.argwhere(m)[:, 0].mean()))
    return masks


def pseudo_disc_target(
    bodies: npt.NDArray[np.generic], pixel_mm: float, *, extra_bg: npt.NDArray[np.bool_] | None = None
) -> npt.NDArray[np.uint8]:
    """Target codes for a slice with body labels only (see module doc)."""
    masks = body_instances(bodies)
    shape = np.asarray(bodies).shape
    target = np.full(shape, BG, dtype=np.uint8)
    if not masks:
        target[:] = IGNORE
        return target
    body = np.zeros(shape, bool)
    for m in masks:
        body |= m
    disc = np.zeros(shape, bool)
    max_gap_px = 25.0 / pixel_mm
    for a, b in itertools.pairwise(masks):
        ca, cb = np.argwhere(a).mean(0), np.argwhere(b).mean(0)
        if np.hypot(*(cb - ca)) > 2.5 * max_gap_px + 0.5 * (
            np.ptp(np.argwhere(a)[:, 0]) + np.ptp(np.argwhere(b)[:, 0])
        ):
            continue
        gap = _hull_fill(a | b) & ~a & ~b
        gap = ndimage.binary_opening(gap, iterations=1)
        disc |= gap
    near = ndimage.binary_dilation(body | disc, iterations=max(1, int(np.rint(18.0 / pixel_mm))))
    target[near] = BG_OR_DISC
    band = ndimage.binary_dilation(disc, iterations=1) & ~disc & ~body
    target[disc] = DISC
    target[band] = IGNORE
    target[body] = BODY
    if extra_bg is not None:
        target[extra_bg & ~body] = BG
    ignore_outside_rows(target, body | disc)
    return target


def ignore_outside_rows(target: npt.NDArray[np.uint8], labelled: npt.NDArray[np.bool_], margin: int = 2) -> None:
    rows = np.flatnonzero(labelled.any(axis=1))
    if rows.size == 0:
        target[:] = IGNORE
        return
    target[: max(0, rows[0] - margin)] = IGNORE
    target[rows[-1] + margin + 1 :] = IGNORE


def full_target(discvert: npt.NDArray[np.generic]) -> npt.NDArray[np.uint8]:
    """Vesal-style semantic labels (1 disc, 2 body) to target codes, rows outside the labels ignored."""
    a = np.asarray(discvert)
    target = np.full(a.shape, BG, dtype=np.uint8)
    target[a == 2] = BODY
    target[a == 1] = DISC
    ignore_outside_rows(target, a > 0)
    return target


def split_posterior(
    components_mask: npt.NDArray[np.bool_], min_px: int = 30
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Split a mid-sagittal whole-vertebra mask into bodies and posterior elements.

    A component is posterior when another component overlapping its rows lies anterior to it by more
    than half its width (bodies are the anterior-most bone column in a sagittal slice).
    """
    lab, n = ndimage.label(components_mask)
    info = []
    for i in range(1, n + 1):
        pts = np.argwhere(lab == i)
        if len(pts) < min_px:
            continue
        info.append((i, pts[:, 0].min(), pts[:, 0].max(), pts[:, 1].mean(), np.ptp(pts[:, 1]) + 1))
    bodies = np.zeros_like(components_mask)
    posterior = np.zeros_like(components_mask)
    for i, r0, r1, cmean, width in info:
        is_post = False
        for j, s0, s1, dmean, _w in info:
            if j == i:
                continue
            overlap = min(r1, s1) - max(r0, s0)
            if overlap > 0.3 * (r1 - r0 + 1) and dmean < cmean - 0.5 * width:
                is_post = True
                break
        (posterior if is_post else bodies)[lab == i] = True
    return bodies, posterior


# ---- samples --------------------------------------------------------------------------------


def _to_model_grid(
    img: npt.NDArray[np.float32], target: npt.NDArray[np.uint8], spacing_mm: tuple[float, float]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]]:
    shape = model_shape((img.shape[0], img.shape[1]), spacing_mm)
    return resize2d(img, shape, order=1).astype(np.float32), resize2d(target, shape, order=0).astype(np.uint8)


def _manifest(folder: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines() if line.strip()]


def vesal_samples(root: Path, split: str) -> list[Sample]:
    out = []
    for i in range(20):
        if i in VESAL_SKIP or (i in VESAL_TEST) != (split == "test"):
            continue
        d = root / "vesal_mri2d"
        loaded = load_input(d / f"vesal-{i:02d}_img.nii.gz")
        assert loaded.plane is not None
        lab_loaded = _nii(str(d / f"vesal-{i:02d}_discvert.nii.gz"))
        lab = np.asarray(lab_loaded.dataobj)[:, :, 0]  # stored IPL, same layout as the canonical plane
        sp = unknown_spacing_mm(loaded.plane.shape)
        img, tgt = _to_model_grid(normalize_image(loaded.plane.pixels, "mr"), full_target(lab), (sp, sp))
        out.append(Sample(img, tgt, f"vesal-{i:02d}", "vesal_mri2d", "mr", True))
    return out


def _best_slice(bodies3d: npt.NDArray[np.bool_]) -> int:
    area = bodies3d.sum(axis=(0, 1)).astype(float)
    area = ndimage.uniform_filter1d(area, 5)
    return int(np.argmax(area))


def fcs_samples(root: Path, folder: str, split: str, offsets: tuple[int, ...] = SLICE_OFFSETS) -> list[Sample]:
    d = root / folder
    test = VB3_TEST | VB2_TEST
    out = []
    for rec in _manifest(d):
        case = str(rec["case"])
        is_test = case in test or folder.startswith(("fcs_vb1", "fcs_ivd"))
        if is_test != (split == "test"):
            continue
        img_file = d / f"{case}_img.nii.gz"
        lab_name = "disc" if folder.startswith("fcs_ivd") else "vertbody"
        lab_file = d / f"{case}_{lab_name}.nii.gz"
        if not img_file.exists() or not lab_file.exists():
            continue
        loaded = load_input(img_file)
        lab = np.asarray(_nii(str(lab_file)).dataobj)  # stored IPL like the image
        assert loaded.canonical is not None and loaded.canonical.shape == lab.shape, case
        k0 = _best_slice(lab > 0)
        for off in offsets:
            k = k0 + off
            if not 0 <= k < lab.shape[2]:
                continue
            plane = loaded.slice_plane(k)
            lab2 = lab[:, :, k]
            if folder.startswith("fcs_ivd"):
                tgt = np.full(lab2.shape, BG_OR_DISC, np.uint8)  # bodies unlabelled: only discs are known
                tgt[lab2 > 0] = DISC
                ignore_outside_rows(tgt, lab2 > 0, margin=12)
            else:
                tgt = pseudo_disc_target(lab2, plane.spacing_mm[0])
            img, t = _to_model_grid(normalize_image(plane.pixels, "mr"), tgt, plane.spacing_mm)
            out.append(Sample(img, t, case, folder, "mr", False))
    return out


def fewshot_samples(root: Path, cases: tuple[str, ...], offsets: tuple[int, ...] = (-2, -1, 0, 1, 2)) -> list[Sample]:
    d = root / "fewshot_ct_sag"
    out = []
    for case in cases:
        loaded = load_input(d / f"{case}_img.nii.gz")
        assert loaded.record is not None and loaded.canonical is not None
        lab_vol = _nii(str(d / f"{case}_spine.nii.gz"))
        from neurospine.io import Volume, reorient

        lab = np.asarray(reorient(Volume(np.asarray(lab_vol.dataobj), lab_vol.affine), "IPL")[0].data) > 0
        # midline = left-right centre of mass of the whole-spine mask (bodies and spinous processes)
        k0 = int(np.rint(float(np.argwhere(lab)[:, 2].mean())))
        for off in offsets:
            k = k0 + off
            bodies, posterior = split_posterior(lab[:, :, k])
            if not plausible_bodies(bodies):
                log.info("%s slice %d: bodies not separable from posterior elements, skipped", case, k)
                continue
            plane = loaded.slice_plane(k)
            sp = unknown_spacing_mm(plane.shape)  # true spacing unknown
            tgt = pseudo_disc_target(bodies, sp, extra_bg=posterior)
            tgt[tgt == DISC] = BG_OR_DISC  # CT gaps are too irregular for pseudo-disc labels
            tgt[tgt == IGNORE] = np.where(_rows_ignored(tgt), IGNORE, BG_OR_DISC)[tgt == IGNORE]
            img, t = _to_model_grid(normalize_image(plane.pixels, "ct"), tgt, (sp, sp))
            out.append(Sample(img, t, case, "fewshot_ct_sag", "ct", False))
    return out


def plausible_bodies(bodies: npt.NDArray[np.bool_]) -> bool:
    """At least 3 body components of similar size (none merged with posterior elements or neighbours)."""
    masks = body_instances(bodies)
    if len(masks) < 3:
        return False
    areas = np.array([m.sum() for m in masks], dtype=float)
    return bool(areas.max() <= 2.0 * np.median(areas))


def _rows_ignored(target: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    rows = np.all(target == IGNORE, axis=1)
    return np.broadcast_to(rows[:, None], target.shape)


def training_samples(root: Path) -> list[Sample]:
    samples = vesal_samples(root, "train")
    samples += fcs_samples(root, "fcs_vb3_myosegmentum_lumbar", "train")
    samples += fcs_samples(root, "fcs_vb2_chu_lumbar_t2", "train")
    samples += fewshot_samples(root, FEWSHOT_TRAIN)
    return samples


def save_samples(samples: list[Sample], path: Path) -> None:
    meta = [
        {"subject": s.subject, "source": s.source, "modality": s.modality, "discs": s.discs_labelled} for s in samples
    ]
    arrays = {f"img{i}": s.image for i, s in enumerate(samples)} | {f"tgt{i}": s.target for i, s in enumerate(samples)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, meta=json.dumps(meta), **arrays)  # type: ignore[arg-type]
    tmp.replace(path)


def load_samples(path: Path) -> list[Sample]:
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        return [
            Sample(z[f"img{i}"], z[f"tgt{i}"], m["subject"], m["source"], m["modality"], bool(m["discs"]))
            for i, m in enumerate(meta)
        ]
