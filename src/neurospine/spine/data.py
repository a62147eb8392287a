"""Real labelled data for the spine model (shared ``fcs_*`` sets) with partial labels and fixed splits.

Each real set labels only some structures, so a case carries a *group* target: voxels hold the index of
a group of network classes (``GROUPS[kind]``), 255 where nothing is known. ``body`` cases know vertebral
body (corpus + endplate) versus "anything else"; ``disc`` cases know disc versus anything else. Above
the topmost and below the lowest labelled structure (per anterior-posterior column, so tilted levels are
handled) the labels say nothing (T12 and S1 are visible but unlabelled in VB3), so those voxels are
ignored. Splits are by subject and fixed here; VB1 is never used for training.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from neurospine.io import Volume, load_volume, reorient
from neurospine.spine import classes as C
from neurospine.spine.preprocess import CANONICAL, normalise_intensity

log = logging.getLogger(__name__)

IGNORE = 255

VB3_DIR = "fcs_vb3_myosegmentum_lumbar"
VB2_DIR = "fcs_vb2_chu_lumbar_t2"
VB1_DIR = "fcs_vb1_zukic_lumbar_mri"
IVD_DIR = "fcs_ivd_fmrp_lumbar_t2"

#: held-out cases (by subject). VB1 is never used for training (other sites, pathology).
VB3_TEST = ("vb3-27", "vb3-28", "vb3-29", "vb3-30", "vb3-31")
VB2_TEST = ("vb2-10", "vb2-12", "vb2-13", "vb2-14")
IVD_TEST = ("ivd-20", "ivd-25")

_ALL = tuple(range(C.N_CLASSES))
#: kind -> list of groups (each a tuple of network classes); group i is target value i
GROUPS: dict[str, tuple[tuple[int, ...], ...]] = {
    "full": tuple((c,) for c in _ALL),
    "body": ((C.CORPUS, C.ENDPLATE), tuple(c for c in _ALL if c not in (C.CORPUS, C.ENDPLATE))),
    "disc": ((C.DISC,), tuple(c for c in _ALL if c != C.DISC)),
}
#: kind -> groups that get a Dice term (background/complement groups do not)
DICE_GROUPS: dict[str, tuple[int, ...]] = {
    "full": tuple(range(1, C.N_CLASSES)),
    "body": (0,),
    "disc": (0,),
}


@dataclass
class TrainCase:
    """One training volume on the model grid (PIR, 1 mm in-plane), stored slice-major (R, P, I) so that
    sagittal slices are contiguous."""

    name: str
    kind: str
    image: npt.NDArray[np.uint8]  # (R, P, I) normalised intensities * 255
    target: npt.NDArray[np.uint8]  # (R, P, I) group index per voxel, IGNORE where unknown
    spacing_mm: tuple[float, float, float]  # (P, I, R)


@dataclass
class EvalCase:
    """A labelled held-out case: image and its reference instance map (input grid)."""

    name: str
    dataset: str
    image: Volume
    labels: Volume
    label_names: dict[int, str] | None
    ids_superior_to_inferior: list[int]


def manifest(root: Path, folder: str) -> list[dict[str, object]]:
    rows = []
    for line in (root / folder / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            if not row.get("skipped") and (root / folder / f"{row['case']}_img.nii.gz").is_file():
                rows.append(row)
    return rows


def _label_file(folder: str) -> str:
    return "disc" if folder == IVD_DIR else "vertbody"


def load_eval_case(root: Path, folder: str, row: dict[str, object]) -> EvalCase:
    name = str(row["case"])
    img = load_volume(root / folder / f"{name}_img.nii.gz")
    lab = load_volume(root / folder / f"{name}_{_label_file(folder)}.nii.gz", check_intensity=False)
    names_raw = row.get("label_names")
    names = {int(k): str(v) for k, v in names_raw.items()} if isinstance(names_raw, dict) else None
    raw_order = row.get("ids_superior_to_inferior")
    order = [int(i) for i in raw_order] if isinstance(raw_order, list) else []
    return EvalCase(name, folder, img, lab, names, order)


def eval_cases(root: Path, which: str) -> list[EvalCase]:
    """Held-out cases: ``vb3``, ``vb2``, ``vb1`` (all) or ``ivd``."""
    folder, keep = {
        "vb3": (VB3_DIR, VB3_TEST),
        "vb2": (VB2_DIR, VB2_TEST),
        "vb1": (VB1_DIR, None),
        "ivd": (IVD_DIR, IVD_TEST),
    }[which]
    rows = [r for r in manifest(root, folder) if keep is None or r["case"] in keep]
    return [load_eval_case(root, folder, r) for r in rows]


#: name suffix of real MR cases with teacher targets (:mod:`neurospine.spine.pseudo`)
TEACHER_SUFFIX = "-teacher"


def partial_target(labels_pir: npt.NDArray[np.integer], *, nothing_below: bool = False) -> npt.NDArray[np.uint8]:
    """Group target of a one-structure-type label map in PIR: 0 = labelled, 1 = other, IGNORE = unknown.

    Per (P, R) column, rows (I axis) above the first and below the last labelled voxel are unknown;
    columns without labels use the volume's overall labelled row range. ``nothing_below``: the lowest
    labelled structure is the last of its kind (L5 in the body sets: below it come the L5-S1 disc and the
    sacrum, whose S1 body SPINEPS labels as sacrum, not as a vertebral body), so rows below it are "other".
    """
    fg = np.asarray(labels_pir) > 0
    target = np.where(fg, 0, 1).astype(np.uint8)
    rows_any = np.nonzero(fg.any(axis=(0, 2)))[0]
    if rows_any.size == 0:
        target[:] = IGNORE
        return target
    n_rows = fg.shape[1]
    idx = np.arange(n_rows)[None, :, None]
    has = fg.any(axis=1)  # (P, R)
    first = np.where(has, fg.argmax(axis=1), rows_any[0])
    last = np.where(has, n_rows - 1 - fg[:, ::-1, :].argmax(axis=1), rows_any[-1])
    outside = (idx < first[:, None, :]) | (idx > last[:, None, :])
    if nothing_below:
        outside = idx < first[:, None, :]
    target[outside] = IGNORE
    return target


def training_image(img: Volume) -> tuple[npt.NDArray[np.uint8], tuple[float, float, float]]:
    """A training image as stored in a :class:`TrainCase`: PIR, normalised * 255, slice-major; and its spacing."""
    img_pir, _ = reorient(img, CANONICAL)
    image = (normalise_intensity(img_pir.data) * 255).astype(np.uint8)
    return slice_major(image), img_pir.spacing_mm


def load_train_case(root: Path, folder: str, name: str, *, nothing_below_l5: bool = False) -> TrainCase:
    img = load_volume(root / folder / f"{name}_img.nii.gz")
    lab = load_volume(root / folder / f"{name}_{_label_file(folder)}.nii.gz", check_intensity=False)
    image, spacing = training_image(img)
    lab_pir, _ = reorient(lab, CANONICAL)
    kind = "disc" if folder == IVD_DIR else "body"
    # VB3 (L1-L5) and VB2 (T11-L5) end at L5: optionally, no vertebral body below their lowest label
    target = partial_target(np.asarray(lab_pir.data), nothing_below=nothing_below_l5 and kind == "body")
    return TrainCase(name, kind, image, slice_major(target), spacing)


def slice_major(arr: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """(P, I, R) -> contiguous (R, P, I)."""
    return np.ascontiguousarray(np.transpose(arr, (2, 0, 1)))


def train_cases(root: Path, *, nothing_below_l5: bool = False) -> list[TrainCase]:
    """Every real training case (VB3 and VB2 minus held-out, IVD minus held-out)."""
    out = []
    for folder, held in ((VB3_DIR, VB3_TEST), (VB2_DIR, VB2_TEST), (IVD_DIR, IVD_TEST)):
        for row in manifest(root, folder):
            name = str(row["case"])
            if name in held:
                continue
            out.append(load_train_case(root, folder, name, nothing_below_l5=nothing_below_l5))
    log.info("loaded %d real training cases", len(out))
    return out


def shared_root() -> Path:
    """``../shared/data`` beside the repository (or ``NEUROSPINE_SHARED_DATA``)."""
    import os

    env = os.environ.get("NEUROSPINE_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3].parent / "shared" / "data"
