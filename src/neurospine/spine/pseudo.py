"""Self-training targets on real MR: a teacher pipeline's own class map on the real training images.

Fine-tuning on re-contrasted CT teaches posterior elements but pulls the vertebral bodies away from real MR
(``docs/decisions/spine_decision_0.12.0.md``). These targets keep real MR in the mix with every structure the
teacher reads well on MR labelled (bodies, endplates, discs, canal, cord, sacrum, background), the manual labels
winning where a case has them, so a fine-tune can learn new anatomy from other sources without forgetting how
real MR looks (distillation in the spirit of "learning without forgetting"). What the teacher reads poorly, the
posterior elements, is left unsupervised: everything at or behind the front wall of its canal but the canal and
cord themselves (a teacher that misses posterior bone would otherwise teach it as background: candidate 0.14.0
lost its posterior elements that way), a margin around its posterior elements, and a one-voxel band along every
boundary of the teacher's map. With ``keep_posterior`` the teacher's posterior elements themselves are taught
(the margin and the rest behind the canal front stay unknown), so that real MR carries positive posterior-element
examples: without them candidate 0.15.0 read real-MR texture as "no posterior elements"; with them 0.16.0 shipped.
The images are drawn with kind "full", so they get the same intensity randomisation as painted and synthetic cases
(their own contrast kept at the run's ``--teacher-keep-contrast`` chance).

Imports the pipeline (ONNX Runtime) but not torch; only training code calls it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.io import Volume, load_volume, reorient
from neurospine.spine import classes as C
from neurospine.spine import data as D
from neurospine.spine.preprocess import CANONICAL

log = logging.getLogger(__name__)

#: unlabelled real MR images trained on with teacher targets only (folder, file); not scored anywhere for accuracy
UNLABELLED_MR: tuple[tuple[str, str], ...] = (("sct_tutorial_unlabeled", "tut-t2lumbar_img.nii.gz"),)
#: teacher voxels within this distance (mm) of its posterior elements are left unsupervised
POSTERIOR_MARGIN_MM = 3.0
#: reach (voxels, in the sagittal plane) of the unsupervised band on each side of every boundary of the teacher's map
BAND_VOX = 1


def _band(cls: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """In-slice (P, I) voxels within :data:`BAND_VOX` of a change of class (PIR map)."""
    st = np.zeros((3, 3, 1), dtype=bool)
    st[:, :, 0] = ndimage.generate_binary_structure(2, 1)
    grown = ndimage.grey_dilation(cls, footprint=st)
    shrunk = ndimage.grey_erosion(cls, footprint=st)
    band = grown != shrunk
    return ndimage.binary_dilation(band, st, iterations=BAND_VOX - 1) if BAND_VOX > 1 else band


def behind_canal_front(teacher: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """Voxels (PIR) at or behind the front wall of the teacher's canal: per inferior-superior row, the most
    anterior canal (or cord) voxel of any sagittal slice, interpolated over rows without canal. Empty when the
    teacher found no canal."""
    canal = np.isin(teacher, (C.CANAL, C.CORD))
    rows = np.flatnonzero(canal.any(axis=(0, 2)))
    if rows.size == 0:
        return np.zeros(teacher.shape, dtype=bool)
    p_index = np.arange(teacher.shape[0])[:, None, None]
    first = np.where(canal, p_index, teacher.shape[0]).min(axis=(0, 2))
    front = np.interp(np.arange(teacher.shape[1]), rows, first[rows])
    return np.broadcast_to(p_index >= np.ceil(front)[None, :, None], teacher.shape).copy()


def teacher_target(
    teacher: npt.NDArray[np.uint8],
    spacing_mm: tuple[float, float, float],
    manual: npt.NDArray[np.uint8] | None = None,
    kind: str = "full",
    *,
    keep_posterior: bool = False,
) -> npt.NDArray[np.uint8]:
    """Full class target (PIR, network classes, :data:`D.IGNORE` = unknown) from the ``teacher`` class map.

    ``keep_posterior``: the teacher's posterior elements (off their boundary band) are targets too, so real MR keeps
    positive posterior-element examples; the margin around them and the rest behind the canal front stay unknown
    (bone the teacher misses is never taught as background).

    ``manual`` is the case's group target (``data.partial_target``: 0 = the labelled structure, 1 = anything
    else, IGNORE = unknown) for ``kind`` "body" or "disc": the labelled structure is written where the manual map
    has it, and the teacher's version of that structure where the manual map says "anything else" is unknown
    (a rater's convention or a teacher error)."""
    t = teacher.astype(np.uint8).copy()
    posterior = np.isin(teacher, C.POSTERIOR_CLASSES)
    near = (
        ndimage.distance_transform_edt(~posterior, sampling=spacing_mm) <= POSTERIOR_MARGIN_MM
        if posterior.any()
        else np.zeros(teacher.shape, dtype=bool)
    )
    trusted_behind = (C.CANAL, C.CORD, *C.POSTERIOR_CLASSES) if keep_posterior else (C.CANAL, C.CORD)
    if keep_posterior:
        near &= ~posterior
    unknown = near | _band(teacher) | (behind_canal_front(teacher) & ~np.isin(teacher, trusted_behind))
    if manual is not None and kind in ("body", "disc"):
        structure = (C.CORPUS, C.ENDPLATE) if kind == "body" else (C.DISC,)
        drawn = manual == 0
        t[drawn & ~np.isin(teacher, structure)] = structure[0]
        unknown |= (manual == 1) & np.isin(teacher, structure)
        unknown &= ~drawn
    t[unknown] = D.IGNORE
    return t


def _case(name: str, image: Volume, teacher: npt.NDArray[np.uint8], target: npt.NDArray[np.uint8]) -> D.TrainCase:
    img, spacing = D.training_image(image)
    if img.shape != D.slice_major(teacher).shape:
        raise ValueError(f"{name}: teacher map {teacher.shape} is not on the image grid (1 mm in-plane?)")
    return D.TrainCase(f"{name}{D.TEACHER_SUFFIX}", "full", img, D.slice_major(target), spacing)


def teacher_cases(root: Path, *, threads: int = 2, keep_posterior: bool = False) -> list[D.TrainCase]:
    """Teacher targets for every real training case (the splits of :mod:`neurospine.spine.data`; held-out cases and
    VB1 never) and the unlabelled MR of :data:`UNLABELLED_MR`. The teacher is the installed ``spine_semantic``
    pipeline (``NEUROSPINE_MODELS_DIR`` can point elsewhere); its class map before the cord fusion is used.
    ``keep_posterior``: see :func:`teacher_target`."""
    from neurospine.spine.api import segment

    out: list[D.TrainCase] = []
    for folder, held in ((D.VB3_DIR, D.VB3_TEST), (D.VB2_DIR, D.VB2_TEST), (D.IVD_DIR, D.IVD_TEST)):
        kind = "disc" if folder == D.IVD_DIR else "body"
        for row in D.manifest(root, folder):
            if row["case"] in held:
                continue
            case = D.load_eval_case(root, folder, row)
            seg = segment(case.image, threads=threads, cord=False)
            lab_pir, _ = reorient(case.labels, CANONICAL)
            manual = D.partial_target(np.asarray(lab_pir.data))
            target = teacher_target(seg.classes, seg.grid.spacing_mm, manual, kind, keep_posterior=keep_posterior)
            out.append(_case(case.name, case.image, seg.classes, target))
    for folder, fname in UNLABELLED_MR:
        path = root / folder / fname
        if not path.is_file():
            log.info("unlabelled MR %s not found; skipped", path)
            continue
        image = load_volume(path)
        seg = segment(image, threads=threads, cord=False)
        target = teacher_target(seg.classes, seg.grid.spacing_mm, keep_posterior=keep_posterior)
        out.append(_case(fname.split("_")[0], image, seg.classes, target))
    log.info("teacher targets for %d real MR images", len(out))
    return out
