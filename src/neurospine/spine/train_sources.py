"""Training sources for the spine network beyond the procedural engine: real label maps painted SynthSeg-style,
and a packed copy of every training array so a run can happen on a machine without ``../shared``.

Real anatomy: a full SPINEPS semantic map (all 14 structures, e.g. the panoptica sagittal MRI reference) or a
sub-region map derived from CT labels is warped (rotation, anisotropic scale, elastic field), painted with a
random per-tissue contrast (:func:`neurospine.synth.augment.image_from_labels`) and resampled to the model grid
with a random slice thickness. Every voxel of such a case has a known class (the image is drawn from the
labels), so it teaches posterior elements, cord and canal on real shapes. Imports torch nowhere; training only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from neurospine.io import Volume, load_volume, reorient
from neurospine.spine import classes as C
from neurospine.spine import data as D

log = logging.getLogger(__name__)

#: label-map sources in ../shared/data (folder/file), with what the map holds. The tptbox *MRI* map is the
#: 14-structure evaluation case of benchmarks/spine.py and is never a training source.
LABELMAP_FILES: tuple[tuple[str, str], ...] = (
    ("label_only_refs", "panoptica-semantic_ref.nii.gz"),  # sagittal MRI, all SPINEPS structures
    ("tptbox_samples", "tpt-ct_subreg.nii.gz"),  # CT vertebra sub-regions (no cord, canal, discs)
)
#: real CT images with their labels (image, SPINEPS sub-region map or None, whole-vertebra map): re-contrasted
#: with a random look-up table on the Hounsfield scale they show real anatomy *with its real surroundings*
#: (muscles, fat, ligaments around the posterior elements), which painted label maps lack. The sub-region map is
#: used where given; derived geometrically (synth.subregions) otherwise and for what it lacks (discs).
CT_IMAGE_FILES: tuple[tuple[str, str, str | None, str], ...] = (
    ("tptbox_samples", "tpt-ct_img.nii.gz", "tpt-ct_subreg.nii.gz", "tpt-ct_vert.nii.gz"),
    ("verse014_ct", "verse014_img.nii.gz", None, "verse014_vert.nii.gz"),
)
#: Hounsfield control points of the random look-up table (air, fat, water/CSF, muscle, disc, marrow, dense
#: marrow, cortex, dense cortex)
CT_LUT_HU: tuple[float, ...] = (-1000.0, -120.0, 0.0, 45.0, 90.0, 220.0, 400.0, 900.0, 1600.0)
#: unlabelled voxels denser than this (HU) in a CT case are bone the map does not label (left unsupervised)
UNLABELLED_BONE_HU = 180.0
#: chance that a CT source is re-contrasted from its image rather than painted from its labels
CT_IMAGE_PROBABILITY = 0.7
#: soft tissue (HU) between two posterior elements that :func:`ligament_mask` may paint dark
LIGAMENT_HU: tuple[float, float] = (-50.0, 150.0)
#: the farthest a ligament voxel may lie from the posterior element above it and from the one below it (mm)
LIGAMENT_REACH_MM = 6.0
#: whole-vertebra instance maps whose sub-regions are derived geometrically (synth.subregions), when available
VERTEBRA_FILES: tuple[tuple[str, str], ...] = (
    ("label_only_refs", "verse004_vert.nii.gz"),
    ("verse014_ct", "verse014_vert.nii.gz"),
)


@dataclass
class LabelMapSource:
    """A SPINEPS semantic map in PIR (any spacing) used to paint training cases; ``image`` (CT, HU, same grid):
    the real image the map labels, re-contrasted instead of painted in :data:`CT_IMAGE_PROBABILITY` of its cases."""

    name: str
    semantic: Volume
    image: Volume | None = None


def _as_pir(vol: Volume, order: int = 0) -> Volume:
    """PIR, and no finer than 1 mm in-plane (painting and warping then cost a third on the 0.59 mm MRI map).
    ``order`` 0 for label maps (kept uint8), 1 for images (float32)."""
    from neurospine.io.resample import grid_for_spacing, resample_to_grid

    out, _ = reorient(vol, "PIR")
    sp = out.spacing_mm
    if min(sp[0], sp[1]) < 0.9:
        shape, aff = grid_for_spacing(out, (max(sp[0], 1.0), max(sp[1], 1.0), sp[2]))
        data = resample_to_grid(np.asarray(out.data), out.affine, shape, aff, order=order)
        out = Volume(data.astype(np.uint8 if order == 0 else np.float32), aff)
    return out


def _ct_source(root: Path, folder: str, image: str, subreg: str | None, vert: str) -> LabelMapSource | None:
    """A CT image with its SPINEPS map: ``subreg`` where given, the map derived from ``vert`` elsewhere."""
    from neurospine.synth.subregions import derive_subregions

    paths = [root / folder / f for f in (image, vert) + ((subreg,) if subreg else ())]
    if not all(p.is_file() for p in paths):
        log.info("CT source %s/%s not found; skipped", folder, image)
        return None
    img = load_volume(paths[0], check_intensity=False)
    v = load_volume(paths[1], check_intensity=False)
    sem = np.asarray(derive_subregions(v.with_data(np.asarray(v.data).astype(np.int16))).data).astype(np.uint8)
    if subreg:
        given = np.asarray(load_volume(paths[2], check_intensity=False).data).astype(np.uint8)
        sem = np.where(given > 0, given, np.where(np.isin(sem, (41, 42, 43, 44, 45, 46, 47, 48, 49, 50)), 0, sem))
    return LabelMapSource(
        image.split("_img")[0] + "-image",
        _as_pir(img.with_data(sem.astype(np.uint8))),
        _as_pir(img.with_data(np.asarray(img.data).astype(np.float32)), order=1),
    )


def load_labelmap_sources(root: Path) -> list[LabelMapSource]:
    """Every label-map source found under ``root`` (missing files are skipped with a log line)."""
    out: list[LabelMapSource] = []
    for folder, fname in LABELMAP_FILES:
        path = root / folder / fname
        if not path.is_file():
            log.info("label-map source %s not found; skipped", path)
            continue
        vol = load_volume(path, check_intensity=False)
        out.append(LabelMapSource(fname.split(".")[0], _as_pir(vol.with_data(np.asarray(vol.data).astype(np.uint8)))))
    from neurospine.synth.subregions import derive_subregions

    for folder, fname in VERTEBRA_FILES:
        path = root / folder / fname
        if not path.is_file():
            continue
        vert = load_volume(path, check_intensity=False)
        sem = derive_subregions(vert.with_data(np.asarray(vert.data).astype(np.int16)))
        out.append(LabelMapSource(fname.split(".")[0] + "-derived", _as_pir(sem)))
    for entry in CT_IMAGE_FILES:
        ct = _ct_source(root, *entry)
        if ct is not None:
            out.append(ct)
    return out


def ct_lut(hu: npt.NDArray[np.floating], rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """A random MR-like contrast of a CT image: a look-up table on :data:`CT_LUT_HU` with random levels (air and
    cortex dark as on MR with 60 % chance, every other level free), then [0, 1]."""
    levels = rng.uniform(0.0, 1.0, len(CT_LUT_HU))
    if rng.random() < 0.6:
        levels[0] = rng.uniform(0.0, 0.05)
        levels[-2:] = rng.uniform(0.0, 0.15, 2)
    out = np.interp(np.asarray(hu, dtype=np.float32), CT_LUT_HU, levels).astype(np.float32)
    return out


def ligament_mask(
    hu: npt.NDArray[np.floating], sem: npt.NDArray[np.integer], spacing_mm: tuple[float, float, float]
) -> npt.NDArray[np.bool_]:
    """Unlabelled soft tissue (:data:`LIGAMENT_HU`) with a posterior element both above and below it within
    :data:`LIGAMENT_REACH_MM` along the superior-inferior axis (PIR axis 1): the ligamentum flavum between two
    laminae, the interspinous ligament between two spinous processes, the capsule between two facets. On T1w and
    T2w MR these are dark, like cortical bone; on CT they have soft-tissue density, so a re-contrasted CT never
    shows the dark band a network must learn to leave out of the posterior elements. Known limitation: the map is
    semantic, so the elements above and below may belong to one vertebra (soft tissue inside one arch: 32 % of the
    mask on VerSe 014, 12 % on TPTBox CT); candidate 0.19.0 was trained with it so (not shipped)."""
    post = np.isin(np.asarray(sem), C.POSTERIOR_VALUES)
    reach = max(1, round(LIGAMENT_REACH_MM / float(spacing_mm[1])))
    above = np.zeros_like(post)
    below = np.zeros_like(post)
    for k in range(1, reach + 1):
        above[:, k:, :] |= post[:, :-k, :]
        below[:, :-k, :] |= post[:, k:, :]
    lo, hi = LIGAMENT_HU
    soft = (np.asarray(sem) == 0) & (np.asarray(hu) > lo) & (np.asarray(hu) < hi)
    return soft & above & below


def labelmap_case(
    source: LabelMapSource, seed: int, rng: np.random.Generator, dark_ligaments: float = 0.0
) -> D.TrainCase:
    """One painted training volume on the model grid (PIR, 1 mm in-plane, random 1-4 mm slices).
    ``dark_ligaments``: chance that a re-contrasted CT case gets its :func:`ligament_mask` painted dark."""
    from neurospine.io.resample import grid_for_spacing, resample_to_grid
    from neurospine.spine.preprocess import normalise_intensity
    from neurospine.synth.augment import AugmentConfig, augment_labelmap, augment_volumes, image_from_labels

    cfg = AugmentConfig(max_rotation_deg=(8.0, 8.0, 8.0), scale=(0.85, 1.2), elastic_mm=2.5, flip_lr=0.5)
    real_image = source.image is not None and rng.random() < CT_IMAGE_PROBABILITY
    unknown: Volume | None = None
    if real_image:
        assert source.image is not None
        inside = source.semantic.with_data(np.ones(source.semantic.shape, dtype=np.uint8))
        img, sem, inside = augment_volumes(
            [source.image, source.semantic, inside], seed, cfg, is_label=[False, True, True]
        )
        unknown = sem.with_data(_unknown(np.asarray(img.data), np.asarray(sem.data), np.asarray(inside.data) > 0))
        dark = None
        if dark_ligaments > 0 and rng.random() < dark_ligaments:
            dark = ligament_mask(np.asarray(img.data), np.asarray(sem.data), img.spacing_mm)
        img = img.with_data(_mr_like(np.asarray(img.data), img.spacing_mm, rng, dark))
    else:
        sem = augment_labelmap(source.semantic, seed, cfg)
        contrast = "random" if rng.random() < 0.6 else "any"
        img = image_from_labels(sem, seed, contrast)
    sp = img.spacing_mm
    lr_mm = float(max(sp[2], rng.choice([1.0, 2.0, 3.0, 4.0])))
    target_sp = (1.0, 1.0, float(np.clip(lr_mm, 1.0, 6.0)))
    if not np.allclose(sp, target_sp, atol=1e-3):
        shape, aff = grid_for_spacing(img, target_sp)
        img = Volume(resample_to_grid(img.data, img.affine, shape, aff, order=1), aff)
        sem = Volume(resample_to_grid(np.asarray(sem.data), sem.affine, shape, aff, order=0), aff)
        if unknown is not None:
            unknown = Volume(resample_to_grid(np.asarray(unknown.data), unknown.affine, shape, aff, order=0), aff)
    image = (normalise_intensity(np.asarray(img.data)) * 255).astype(np.uint8)
    target = C.spineps_to_net(np.asarray(sem.data))
    if unknown is not None:  # CT shows no cord/canal boundary an MR network could learn from: left unsupervised
        target[np.isin(np.asarray(sem.data), (60, 61)) | (np.asarray(unknown.data) > 0)] = D.IGNORE
    return D.TrainCase(f"{source.name}-{seed}", "full", D.slice_major(image), D.slice_major(target), img.spacing_mm)


def _unknown(
    hu: npt.NDArray[np.floating], sem: npt.NDArray[np.integer], inside: npt.NDArray[np.bool_]
) -> npt.NDArray[np.uint8]:
    """Voxels of a warped CT case whose class is unknown: outside the source grid (the image there repeats its
    edge), and bone the map does not label (vertebrae beyond the labelled ones, the sacrum, the pelvis: denser
    than :data:`UNLABELLED_BONE_HU`, grown by one voxel for their partial-volume rim)."""
    from scipy import ndimage

    bone = ndimage.binary_dilation((np.asarray(hu) > UNLABELLED_BONE_HU) & (np.asarray(sem) == 0))
    return ((~inside) | bone).astype(np.uint8)


def _mr_like(
    hu: npt.NDArray[np.floating],
    spacing_mm: tuple[float, float, float],
    rng: np.random.Generator,
    dark: npt.NDArray[np.bool_] | None = None,
) -> Any:
    """:func:`ct_lut` of the smoothed image (CT noise would turn into texture no MR image has), ``dark`` voxels
    set to a low level (ligaments, see :func:`ligament_mask`), then the MR engine's blur, bias field and Rician
    noise."""
    from scipy import ndimage

    from neurospine.synth import artifacts

    img = ct_lut(ndimage.gaussian_filter(np.asarray(hu, dtype=np.float32), 1.0 / np.asarray(spacing_mm)), rng)
    if dark is not None and dark.any():
        img[dark] = float(rng.uniform(0.0, 0.12)) * float(img.max())
    img = artifacts.blur(img, tuple(float(rng.uniform(0.0, 0.8)) for _ in range(3)))  # type: ignore[arg-type]
    img = np.clip(img, 0.0, None) * artifacts.bias_field(img.shape, spacing_mm, 0.2, rng)
    return artifacts.rician(img, float(rng.uniform(0.005, 0.04)), rng).astype(np.float32)


# ---- pack: every array a training run reads, in one compressed file --------------------------------


def crop_case(case: D.TrainCase, margin_r: int = 8, margin_i_mm: float = 50.0, r_step_mm: float = 2.0) -> D.TrainCase:
    """The slab of a partially labelled case that training draws from: sagittal slices within ``margin_r`` of
    the labelled ones and rows within ``margin_i_mm`` of the known target (the full anterior-posterior extent
    is kept, so image borders in front of the spine stay in the data), every ``r_step_mm`` in left-right (the
    real sets were resampled to 1 mm from 2-4.4 mm slices, so every other slice adds little)."""
    known = case.target != D.IGNORE
    if case.kind == "full" or not known.any():
        return case
    labelled = case.target == 0
    rs = np.nonzero(labelled.any(axis=(1, 2)))[0]
    ii = np.nonzero(known.any(axis=(0, 1)))[0]
    m_i = round(margin_i_mm / case.spacing_mm[1])
    r0, r1 = max(0, int(rs.min()) - margin_r), min(case.image.shape[0], int(rs.max()) + margin_r + 1)
    i0, i1 = max(0, int(ii.min()) - m_i), min(case.image.shape[2], int(ii.max()) + m_i + 1)
    step_r = max(1, round(r_step_mm / case.spacing_mm[2]))
    sl = (slice(r0, r1, step_r), slice(None), slice(i0, i1))
    spacing = (case.spacing_mm[0], case.spacing_mm[1], case.spacing_mm[2] * step_r)
    return D.TrainCase(
        case.name, case.kind, np.ascontiguousarray(case.image[sl]), np.ascontiguousarray(case.target[sl]), spacing
    )


def cases_to_arrays(cases: list[D.TrainCase], prefix: str, *, crop: bool) -> dict[str, npt.NDArray[np.generic]]:
    """Arrays of ``cases`` for an ``.npz`` (read back by :func:`cases_from_arrays`), each cropped by
    :func:`crop_case` when ``crop``."""
    arrays: dict[str, npt.NDArray[np.generic]] = {}
    for i, case in enumerate(cases):
        c = crop_case(case) if crop else case
        arrays[f"{prefix}{i}_image"] = c.image
        arrays[f"{prefix}{i}_target"] = c.target
        arrays[f"{prefix}{i}_meta"] = np.array([c.name, c.kind, *map(str, c.spacing_mm)])
    return arrays


def cases_from_arrays(z: Any, prefix: str) -> list[D.TrainCase]:
    """The cases :func:`cases_to_arrays` stored under ``prefix`` in the open ``.npz`` ``z``."""
    keys = set(z.files)
    out: list[D.TrainCase] = []
    while f"{prefix}{len(out)}_image" in keys:
        i = len(out)
        meta = [str(m) for m in z[f"{prefix}{i}_meta"]]
        spacing = (float(meta[2]), float(meta[3]), float(meta[4]))
        out.append(D.TrainCase(meta[0], meta[1], z[f"{prefix}{i}_image"], z[f"{prefix}{i}_target"], spacing))
    return out


def write_pack(path: Path, real: list[D.TrainCase], sources: list[LabelMapSource]) -> Path:
    """Save real training cases (cropped, :func:`crop_case`) and label-map sources to one LZMA-compressed
    ``.npz`` stream (read back by :func:`read_pack`)."""
    import io
    import lzma

    arrays = cases_to_arrays(real, "real", crop=True)
    for i, s in enumerate(sources):
        arrays[f"src{i}_data"] = np.asarray(s.semantic.data)
        arrays[f"src{i}_affine"] = s.semantic.affine
        arrays[f"src{i}_name"] = np.array([s.name])
        if s.image is not None:
            arrays[f"src{i}_image"] = np.asarray(s.image.data, dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(lzma.compress(buf.getvalue(), preset=6))
    tmp.replace(path)
    return path


def read_pack(path: Path) -> tuple[list[D.TrainCase], list[LabelMapSource]]:
    import io
    import lzma

    with np.load(io.BytesIO(lzma.decompress(path.read_bytes()))) as z:
        keys = set(z.files)
        real = cases_from_arrays(z, "real")
        sources: list[LabelMapSource] = []
        i = 0
        while f"src{i}_data" in keys:
            vol = Volume(z[f"src{i}_data"], z[f"src{i}_affine"])
            image = Volume(z[f"src{i}_image"], z[f"src{i}_affine"]) if f"src{i}_image" in keys else None
            sources.append(LabelMapSource(str(z[f"src{i}_name"][0]), vol, image))
            i += 1
    return real, sources


@dataclass
class PaintPool:
    """Painted label-map volumes kept in memory, one replaced at a time (like the synthetic pool)."""

    sources: list[LabelMapSource]
    next_seed: int
    cases: list[D.TrainCase]
    dark_ligaments: float = 0.0

    def _draw(self, rng: np.random.Generator) -> D.TrainCase:
        source = self.sources[int(rng.integers(len(self.sources)))]
        case = labelmap_case(source, self.next_seed, rng, self.dark_ligaments)
        self.next_seed += 1
        return case

    def fill(self, size: int, rng: np.random.Generator) -> None:
        while self.sources and len(self.cases) < size:
            self.cases.append(self._draw(rng))

    def refresh(self, rng: np.random.Generator) -> None:
        if self.cases:
            self.cases[int(rng.integers(len(self.cases)))] = self._draw(rng)

    def pick(self, rng: np.random.Generator) -> D.TrainCase:
        return self.cases[int(rng.integers(len(self.cases)))]
