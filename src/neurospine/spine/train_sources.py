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
#: whole-vertebra instance maps whose sub-regions are derived geometrically (synth.subregions), when available
VERTEBRA_FILES: tuple[tuple[str, str], ...] = (
    ("label_only_refs", "verse004_vert.nii.gz"),
    ("verse014_ct", "verse014_vert.nii.gz"),
)


@dataclass
class LabelMapSource:
    """A SPINEPS semantic map in PIR (any spacing) used to paint training cases."""

    name: str
    semantic: Volume


def _as_pir(vol: Volume) -> Volume:
    """PIR, and no finer than 1 mm in-plane (painting and warping then cost a third on the 0.59 mm MRI map)."""
    from neurospine.io.resample import grid_for_spacing, resample_to_grid

    out, _ = reorient(vol, "PIR")
    sp = out.spacing_mm
    if min(sp[0], sp[1]) < 0.9:
        shape, aff = grid_for_spacing(out, (max(sp[0], 1.0), max(sp[1], 1.0), sp[2]))
        out = Volume(resample_to_grid(np.asarray(out.data), out.affine, shape, aff, order=0).astype(np.uint8), aff)
    return out


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
    return out


def labelmap_case(source: LabelMapSource, seed: int, rng: np.random.Generator) -> D.TrainCase:
    """One painted training volume on the model grid (PIR, 1 mm in-plane, random 1-4 mm slices)."""
    from neurospine.io.resample import grid_for_spacing, resample_to_grid
    from neurospine.spine.preprocess import normalise_intensity
    from neurospine.synth.augment import AugmentConfig, augment_labelmap, image_from_labels

    cfg = AugmentConfig(max_rotation_deg=(8.0, 8.0, 8.0), scale=(0.85, 1.2), elastic_mm=2.5, flip_lr=0.5)
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
    image = (normalise_intensity(np.asarray(img.data)) * 255).astype(np.uint8)
    target = C.spineps_to_net(np.asarray(sem.data))
    return D.TrainCase(f"{source.name}-{seed}", "full", D.slice_major(image), D.slice_major(target), img.spacing_mm)


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


def write_pack(path: Path, real: list[D.TrainCase], sources: list[LabelMapSource]) -> Path:
    """Save real training cases (cropped, :func:`crop_case`) and label-map sources to one LZMA-compressed
    ``.npz`` stream (read back by :func:`read_pack`)."""
    import io
    import lzma

    arrays: dict[str, npt.NDArray[np.generic]] = {}
    for i, case in enumerate(real):
        c = crop_case(case)
        arrays[f"real{i}_image"] = c.image
        arrays[f"real{i}_target"] = c.target
        arrays[f"real{i}_meta"] = np.array([c.name, c.kind, *map(str, c.spacing_mm)])
    for i, s in enumerate(sources):
        arrays[f"src{i}_data"] = np.asarray(s.semantic.data)
        arrays[f"src{i}_affine"] = s.semantic.affine
        arrays[f"src{i}_name"] = np.array([s.name])
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
        real: list[D.TrainCase] = []
        i = 0
        while f"real{i}_image" in keys:
            meta = [str(m) for m in z[f"real{i}_meta"]]
            spacing = (float(meta[2]), float(meta[3]), float(meta[4]))
            real.append(D.TrainCase(meta[0], meta[1], z[f"real{i}_image"], z[f"real{i}_target"], spacing))
            i += 1
        sources: list[LabelMapSource] = []
        i = 0
        while f"src{i}_data" in keys:
            vol = Volume(z[f"src{i}_data"], z[f"src{i}_affine"])
            sources.append(LabelMapSource(str(z[f"src{i}_name"][0]), vol))
            i += 1
    return real, sources


@dataclass
class PaintPool:
    """Painted label-map volumes kept in memory, one replaced at a time (like the synthetic pool)."""

    sources: list[LabelMapSource]
    next_seed: int
    cases: list[D.TrainCase]

    def _draw(self, rng: np.random.Generator) -> D.TrainCase:
        source = self.sources[int(rng.integers(len(self.sources)))]
        case = labelmap_case(source, self.next_seed, rng)
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
