"""Training data for the cord model: volumes with soft cord/canal targets and 2D patch sampling.

Sources (kept apart by subject; ``sct_testing_data`` is never used here, it is the test subject):

* synthetic cases from ``neurospine.synth`` (random contrast, sagittal and axial acquisitions,
  anisotropic slices; soft partial-volume cord and canal targets);
* real cord masks: the PAM50 template (``pam50_small_template``) and the SCT tutorial MT-on image
  with its silver cord mask (``sct_tutorial_unlabeled``); since 2.0.0 also the training people of the
  grey-matter challenge (``GMC_TRAIN``; ``GMC_HELDOUT`` is never trained on). Their binary masks become soft targets by
  linear interpolation when patches are resampled; they carry no canal target (channel weight 0).

Patches imitate inference (``neurospine.cord.crop``): one axial slice, resampled to a random
in-plane spacing, rotated and shifted around the cord (or anywhere, for negatives), normalised
with the same percentile rule, then intensity-randomised (contrast-agnostic training).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.cord.crop import normalize_patch
from neurospine.io import Volume, load_volume, reorient

log = logging.getLogger(__name__)
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class TrainVolume:
    """One training volume on a RAS grid; ``canal`` is ``None`` when the source has no canal label.

    ``cord_weight`` (same grid, 0 or 1) marks where the cord target is supervised (``None``: everywhere), and
    ``slice_range`` (first, last) the axial slices a rater labelled (``None``: every slice)."""

    name: str
    subject: str
    image: FloatArray
    cord: FloatArray
    canal: FloatArray | None
    spacing_mm: tuple[float, float, float]
    cord_weight: FloatArray | None = None
    slice_range: tuple[int, int] | None = None

    @property
    def cord_slices(self) -> npt.NDArray[np.intp]:
        return np.flatnonzero((self.cord >= 0.5).any(axis=(0, 1)))

    @property
    def cauda_slices(self) -> npt.NDArray[np.intp]:
        """Axial slices caudal to the cord's lowest voxel that still hold canal (below the conus: cauda
        equina); empty without a canal label. The RAS grid puts caudal at low slice indices; canal slices above
        the cord (the cord's cranial cap) are never chosen."""
        if self.canal is None:
            return np.zeros(0, dtype=np.intp)
        with_cord = np.flatnonzero((self.cord > 0.01).any(axis=(0, 1)))
        end = int(with_cord.min()) if with_cord.size else self.cord.shape[2]
        canal = np.flatnonzero((self.canal >= 0.5).any(axis=(0, 1)))
        return canal[canal < end]


def edge_band_weight(mask: npt.NDArray[np.bool_], spacing_mm: tuple[float, float], band_mm: float) -> FloatArray:
    """0 on pixels whose centre lies within ``band_mm`` of the boundary of a binary mask (per axial slice),
    1 elsewhere: a rater's edge convention is not taught, only where the structure is.

    The distance from a pixel centre to the boundary is the in-plane distance to the nearest pixel centre on
    the other side, less half a pixel along the main axis of that direction (the boundary lies between the two;
    on square pixels this is half the spacing everywhere, on non-square pixels it follows the axis)."""
    weight = np.ones(mask.shape, dtype=np.float32)
    if band_mm <= 0:
        return weight
    sx, sy = spacing_mm
    grid = np.indices(mask.shape[:2], dtype=np.float64)
    for k in np.flatnonzero(mask.any(axis=(0, 1))):
        m = mask[:, :, k]
        dist = np.zeros(m.shape, dtype=np.float64)
        for side in (m, ~m):  # each pixel measured to the nearest pixel of the other side
            _, nearest = ndimage.distance_transform_edt(side, sampling=spacing_mm, return_indices=True)
            dx, dy = (nearest[0] - grid[0]) * sx, (nearest[1] - grid[1]) * sy
            half = 0.5 * np.where(np.abs(dx) >= np.abs(dy), sx, sy)
            dist[side] = (np.hypot(dx, dy) - half)[side]
        weight[:, :, k] = (dist >= band_mm).astype(np.float32)
    return weight


def with_edge_band(vol: TrainVolume, band_mm: float) -> TrainVolume:
    """The volume with its hard cord mask's edge band left unsupervised (see :func:`edge_band_weight`)."""
    if band_mm <= 0:
        return vol
    w = edge_band_weight(vol.cord >= 0.5, (vol.spacing_mm[0], vol.spacing_mm[1]), band_mm)
    return dataclasses.replace(vol, cord_weight=w)


def _ras(vol: Volume) -> tuple[FloatArray, tuple[float, float, float]]:
    r, _ = reorient(vol, "RAS")
    return np.asarray(r.data, dtype=np.float32), r.spacing_mm


def from_volumes(name: str, subject: str, image: Volume, cord: Volume, canal: Volume | None = None) -> TrainVolume:
    img, sp = _ras(image)
    c, _ = _ras(cord)
    k = None if canal is None else _ras(canal)[0]
    return TrainVolume(name, subject, img, np.clip(c, 0, 1), None if k is None else np.clip(k, 0, 1), sp)


#: Real cord masks allowed for training: (folder, image file, mask file, subject id).
REAL_SOURCES: tuple[tuple[str, str, str, str], ...] = (
    ("pam50_small_template", "pam50small_img.nii.gz", "pam50small_cordseg.nii.gz", "pam50-template"),
    ("sct_tutorial_unlabeled", "tut-sub05mton_img.nii.gz", "tut-sub05mton_cordseg.nii.gz", "spinegeneric-sub05"),
)


#: Spinal Cord Grey Matter Challenge (``gmchallenge_cord_t2star``: axial T2*w, 6 people, 6 sites, manual cord
#: masks). Split by person, fixed before any candidate was scored (docs/decisions/cord-2.0.0.md). Held out:
#: two sites, 9418 (UCL, Philips Achieva 3T) and 9709 (Milan, Siemens Avanto 1.5T, both sessions), one of
#: each vendor and the only 1.5T scanner. Training: the other four people (four sites).
GMC_FOLDER = "gmchallenge_cord_t2star"
GMC_TRAIN: tuple[tuple[str, str], ...] = (
    ("gmc-10062ses1", "gmc-10062"),  # CEITEC, Siemens Prisma 3T
    ("gmc-10062ses2", "gmc-10062"),  # same person, second session
    ("gmc-9584", "gmc-9584"),  # NWU, Siemens Prisma fit 3T
    ("gmc-9604", "gmc-9604"),  # CHUM, Philips Achieva 3T
    ("gmc-9669", "gmc-9669"),  # Juntendo, Siemens 3T
)
GMC_HELDOUT: tuple[tuple[str, str], ...] = (
    ("gmc-9418", "gmc-9418"),  # UCL, Philips Achieva 3T
    ("gmc-9709ses1", "gmc-9709"),  # Milan, Siemens Avanto 1.5T
    ("gmc-9709ses2", "gmc-9709"),  # same person, second session
)


def gmc_paths(shared_data: Path, case: str) -> tuple[Path, Path]:
    """Image and manual cord mask of one challenge session."""
    folder = shared_data / GMC_FOLDER
    return folder / f"{case}_img.nii.gz", folder / f"{case}_cordseg.nii.gz"


def refuse_held_out(case: str) -> None:
    """Raise when ``case`` is a held-out session, so a held-out person can never reach training by a typo."""
    if case in {c for c, _ in GMC_HELDOUT}:
        raise ValueError(f"{case} is a held-out session of the cord split; it cannot be used for training")


def gmc_training_cases(leave_out: set[str]) -> tuple[tuple[str, str], ...]:
    """The challenge training sessions without the people in ``leave_out`` (each must be a training person)."""
    people = {person for _, person in GMC_TRAIN}
    if leave_out - people:
        raise ValueError(f"{sorted(leave_out - people)} are not among the challenge training people {sorted(people)}")
    return tuple((case, person) for case, person in GMC_TRAIN if person not in leave_out)


def load_gmchallenge(shared_data: Path, cases: tuple[tuple[str, str], ...] = GMC_TRAIN) -> list[TrainVolume]:
    """Challenge sessions with their manual cord masks as hard targets (no canal label: weight 0); held-out
    sessions are refused (:func:`refuse_held_out`)."""
    out = []
    for case, subject in cases:
        refuse_held_out(case)
        ip, mp = gmc_paths(shared_data, case)
        vol = _load_hard_pair(ip, mp, f"{GMC_FOLDER}/{case}", subject, "challenge training session")
        if vol is not None:
            ks = vol.cord_slices  # the rater's range: 9604's mask stops 6 slices before its image does
            out.append(dataclasses.replace(vol, slice_range=(int(ks.min()), int(ks.max())) if ks.size else None))
    return out


def load_real(shared_data: Path) -> list[TrainVolume]:
    out = []
    for folder, img_name, msk_name, subject in REAL_SOURCES:
        ip, mp = shared_data / folder / img_name, shared_data / folder / msk_name
        vol = _load_hard_pair(ip, mp, f"{folder}/{img_name}", subject, "real training source")
        if vol is not None:
            out.append(vol)
    return out


def _load_hard_pair(image: Path, mask: Path, name: str, subject: str, what: str) -> TrainVolume | None:
    """An image and its manual cord mask (binarised: a hard target); None, with a warning, when either is missing."""
    if not (image.is_file() and mask.is_file()):
        log.warning("%s missing: %s", what, image)
        return None
    img = load_volume(image)
    msk = load_volume(mask, check_intensity=False)
    binary = msk.with_data((np.asarray(msk.data) > 0).astype(np.float32))
    return from_volumes(name, subject, img, binary)


def save_cache(vol: TrainVolume, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    arrays: dict[str, npt.NDArray[np.generic]] = {
        "image": vol.image.astype(np.float32),
        "cord": vol.cord.astype(np.float16),
        "spacing": np.asarray(vol.spacing_mm),
    }
    if vol.canal is not None:
        arrays["canal"] = vol.canal.astype(np.float16)
    np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]
    tmp.replace(path)


def load_cache(path: Path, name: str, subject: str) -> TrainVolume:
    with np.load(path) as z:
        canal = z["canal"].astype(np.float32) if "canal" in z.files else None
        sp = tuple(float(v) for v in z["spacing"])
        return TrainVolume(
            name, subject, z["image"].astype(np.float32), z["cord"].astype(np.float32), canal, (sp[0], sp[1], sp[2])
        )


# ---- patch sampling ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PatchConfig:
    size: int = 64
    fine_spacing_mm: tuple[float, float] = (0.4, 0.8)
    coarse_spacing_mm: tuple[float, float] = (0.8, 1.3)
    p_coarse: float = 0.3
    p_negative: float = 0.1
    #: share of patches centred on the canal of a slice without cord (cauda equina; target cord 0)
    p_cauda: float = 0.0
    max_rotation_deg: float = 25.0
    fine_shift_mm: float = 5.0


def _intensity(img: FloatArray, rng: np.random.Generator) -> FloatArray:
    from neurospine.nn.augment import blur, contrast_randomize

    out = contrast_randomize(normalize_patch(img, 0.5, 99.5).clip(0, 1), rng, p_keep=0.3, p_invert=0.2)
    if rng.random() < 0.3:
        out = blur(out, rng, 1.0)
    return normalize_patch(out)


def sample_patch(
    vol: TrainVolume, rng: np.random.Generator, cfg: PatchConfig = PatchConfig()
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """One (1, S, S) image, (2, S, S) soft target and weights: (2,) per channel, or (2, S, S) per pixel when
    the volume has a ``cord_weight`` map."""
    cord_slices = vol.cord_slices
    # drawn only when asked for, so a run without cauda patches samples exactly as before
    cauda_ks = vol.cauda_slices if cfg.p_cauda > 0 and rng.random() < cfg.p_cauda else np.zeros(0, dtype=np.intp)
    cauda = cauda_ks.size > 0
    negative = not cauda and (rng.random() < cfg.p_negative or cord_slices.size == 0)
    if cauda:
        k = int(rng.choice(cauda_ks))
    elif negative:
        first, last = vol.slice_range if vol.slice_range is not None else (0, vol.image.shape[2] - 1)
        k = int(rng.integers(first, last + 1))
    else:
        k = int(rng.choice(cord_slices))
    coarse = rng.random() < cfg.p_coarse
    lo, hi = cfg.coarse_spacing_mm if coarse else cfg.fine_spacing_mm
    s = float(rng.uniform(lo, hi))
    sx, sy = vol.spacing_mm[0], vol.spacing_mm[1]
    cord2d = vol.cord[:, :, k]
    # the patch centres on the cord, or on the canal of a cauda slice, as inference centres its windows
    centre_map = vol.canal[:, :, k] if cauda and vol.canal is not None else cord2d
    if negative or centre_map.sum() <= 0:
        centre = np.array([rng.uniform(0, cord2d.shape[0]), rng.uniform(0, cord2d.shape[1])])
    else:
        ii, jj = np.nonzero(centre_map)
        w = centre_map[ii, jj]
        centre = np.array([(w * ii).sum() / w.sum(), (w * jj).sum() / w.sum()])
        half_fov = cfg.size * s / 2.0
        shift_mm = rng.uniform(-0.8, 0.8, 2) * half_fov if coarse else rng.normal(0, cfg.fine_shift_mm, 2)
        centre = centre + shift_mm / np.array([sx, sy])
    phi = math.radians(float(rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg)))
    aniso = np.exp(rng.normal(0, 0.05, 2))
    flip = -1.0 if rng.random() < 0.5 else 1.0
    g = (np.arange(cfg.size) - (cfg.size - 1) / 2.0) * s
    gx, gy = np.meshgrid(g * flip * aniso[0], g * aniso[1], indexing="ij")
    rx = math.cos(phi) * gx - math.sin(phi) * gy
    ry = math.sin(phi) * gx + math.cos(phi) * gy
    coords = [centre[0] + rx / sx, centre[1] + ry / sy]
    img = ndimage.map_coordinates(vol.image[:, :, k], coords, order=1, mode="nearest").astype(np.float32)
    tc = ndimage.map_coordinates(cord2d, coords, order=1, mode="constant", cval=0.0)
    weights = np.array([1.0, 1.0 if vol.canal is not None else 0.0], dtype=np.float32)
    tk = (
        np.zeros_like(tc)
        if vol.canal is None
        else ndimage.map_coordinates(vol.canal[:, :, k], coords, order=1, mode="constant", cval=0.0)
    )
    target = np.stack([tc, tk]).astype(np.float32).clip(0, 1)
    if vol.cord_weight is not None:
        wc = ndimage.map_coordinates(vol.cord_weight[:, :, k], coords, order=0, mode="constant", cval=1.0)
        weights = np.stack([wc.astype(np.float32), np.full_like(wc, weights[1], dtype=np.float32)])
    return _intensity(img, rng)[None], target, weights


def sample_batch(
    vols: list[TrainVolume],
    rng: np.random.Generator,
    n: int,
    cfg: PatchConfig = PatchConfig(),
    probs: npt.NDArray[np.float64] | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    idx = rng.choice(len(vols), size=n, p=probs)
    xs, ys, ws = zip(*(sample_patch(vols[i], rng, cfg) for i in idx), strict=True)
    if any(w.ndim > 1 for w in ws):  # per-pixel weights for the whole batch when one patch has them
        ws = tuple(w if w.ndim > 1 else np.broadcast_to(w[:, None, None], ys[0].shape) for w in ws)
    return np.stack(xs), np.stack(ys), np.stack(ws)
