"""Spatial augmentation of real label maps (and images): rotation, anisotropic scaling, elastic warping.

One random transform per seed, applied identically to every volume of a case (label maps with
nearest-neighbour sampling, images trilinearly), on the input's own grid, so an augmented SPINEPS
semantic map and its instance map stay consistent. ``image_from_labels`` then paints a random-contrast
image on any SPINEPS-style label map, which turns label-only references into training pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.io import Volume
from neurospine.synth import artifacts
from neurospine.synth.contrast import resolve_contrast, sample_intensity_table
from neurospine.synth.spine_shape import small_rotation
from neurospine.synth.tissues import Tissue


@dataclass(frozen=True)
class AugmentConfig:
    max_rotation_deg: tuple[float, float, float] = (10.0, 10.0, 10.0)  # about the world x, y, z axes
    scale: tuple[float, float] = (0.85, 1.15)  # per-axis scale range
    elastic_mm: float = 3.0  # sd of the elastic displacement
    elastic_spacing_mm: float = 32.0  # distance between elastic control points
    flip_lr: float = 0.0  # probability of a left-right mirror (off by default: it swaps L/R labels)


def _coordinates(vol: Volume, seed: int, cfg: AugmentConfig) -> npt.NDArray[np.float32]:
    """Source voxel coordinates (3, *shape) for every output voxel."""
    rng = np.random.default_rng([seed, 7])
    shape = vol.shape
    aff = vol.affine
    lin = aff[:3, :3]
    centre_vox = (np.array(shape, dtype=np.float64) - 1) / 2.0
    rot = small_rotation(*(rng.uniform(-1, 1, 3) * np.array(cfg.max_rotation_deg)))
    scale = np.exp(rng.uniform(math.log(cfg.scale[0]), math.log(cfg.scale[1]), 3))
    if rng.random() < cfg.flip_lr:
        scale[0] = -scale[0]
    # output world point p -> source world point q = centre + R^T (p - centre) / scale (inverse map)
    world_to_src = rot.T / scale[:, None]
    m = np.linalg.inv(lin) @ world_to_src @ lin  # voxel -> voxel (about the centre)
    grids = np.meshgrid(
        *[np.arange(n, dtype=np.float32) - np.float32(c) for n, c in zip(shape, centre_vox, strict=True)],
        indexing="ij",
        sparse=True,
    )
    coords = np.empty((3, *shape), dtype=np.float32)
    for i in range(3):
        coords[i] = (
            np.float32(m[i, 0]) * grids[0]
            + np.float32(m[i, 1]) * grids[1]
            + np.float32(m[i, 2]) * grids[2]
            + np.float32(centre_vox[i])
        )
    if cfg.elastic_mm > 0:
        sp = vol.spacing_mm
        step = tuple(max(2, round(cfg.elastic_spacing_mm / s)) for s in sp)
        for i in range(3):
            disp = artifacts.smooth_field(shape, (step[0], step[1], step[2]), rng)
            coords[i] += disp * np.float32(cfg.elastic_mm / sp[i])
    return coords


def augment_volumes(
    volumes: Sequence[Volume], seed: int, config: AugmentConfig | None = None, is_label: Sequence[bool] | None = None
) -> list[Volume]:
    """Apply one random spatial transform (from ``seed``) to volumes that share a grid.

    ``is_label`` marks the label maps (nearest neighbour); by default integer arrays are labels and
    float arrays images (trilinear), so pass it for label maps stored as floats.
    """
    cfg = config or AugmentConfig()
    if not volumes:
        return []
    ref = volumes[0]
    for v in volumes[1:]:
        if not v.same_grid(ref):
            raise ValueError("augment_volumes needs volumes on the same grid")
    flags = list(is_label) if is_label is not None else [np.issubdtype(v.data.dtype, np.integer) for v in volumes]
    coords = _coordinates(ref, seed, cfg)
    out = []
    for vol, lab in zip(volumes, flags, strict=True):
        data = np.asarray(vol.data)
        if lab:
            res = ndimage.map_coordinates(data, coords, order=0, mode="constant", cval=0, prefilter=False)
            out.append(vol.with_data(res.astype(data.dtype)))
        else:
            res = ndimage.map_coordinates(data.astype(np.float32), coords, order=1, mode="nearest", prefilter=False)
            out.append(vol.with_data(res.astype(np.float32)))
    return out


def augment_labelmap(volume: Volume, seed: int, config: AugmentConfig | None = None) -> Volume:
    """A randomly rotated, scaled and elastically warped copy of a label map (same grid, same labels)."""
    return augment_volumes([volume], seed, config, is_label=[True])[0]


# SPINEPS semantic value -> tissue class (background gets a random partition of soft tissues)
_SEMANTIC_TISSUE = {
    26: Tissue.MARROW,
    41: Tissue.MARROW_POST,
    42: Tissue.MARROW_POST,
    43: Tissue.MARROW_POST,
    44: Tissue.MARROW_POST,
    45: Tissue.MARROW_POST,
    46: Tissue.MARROW_POST,
    47: Tissue.MARROW_POST,
    48: Tissue.MARROW_POST,
    49: Tissue.MARROW,
    50: Tissue.MARROW,
    52: Tissue.ENDPLATE,
    53: Tissue.ENDPLATE,
    60: Tissue.CORD,
    61: Tissue.CSF,
    62: Tissue.ENDPLATE,
    100: Tissue.NUCLEUS,
}
_BACKGROUND = (Tissue.MUSCLE, Tissue.FAT, Tissue.SOFT, Tissue.ORGAN, Tissue.BOWEL)


def image_from_labels(semantic: Volume, seed: int, contrast: str = "random") -> Volume:
    """Paint an image on a SPINEPS semantic label map (SynthSeg-style; background = random soft tissues)."""
    rng = np.random.default_rng([seed, 11])
    sem = np.asarray(semantic.data).astype(np.int64)
    lut = np.full(max(256, int(sem.max()) + 1), -1, dtype=np.int16)
    for value, tis in _SEMANTIC_TISSUE.items():
        lut[value] = int(tis)
    tissue = lut[np.clip(sem, 0, len(lut) - 1)]
    unknown = tissue < 0
    # background: quantise a smooth random field into a few soft tissues
    step = tuple(max(2, round(12.0 / s)) for s in semantic.spacing_mm)
    field = artifacts.smooth_field(semantic.shape, (step[0], step[1], step[2]), rng)
    k = int(rng.integers(2, len(_BACKGROUND) + 1))
    choice = rng.choice(len(_BACKGROUND), size=k, replace=False)
    edges = np.quantile(field[::2, ::2, ::2], np.linspace(0, 1, k + 1)[1:-1])
    part = np.searchsorted(edges, field)
    bg = np.array([int(_BACKGROUND[i]) for i in choice], dtype=np.int16)[part]
    tissue = np.where(unknown, bg, tissue).astype(np.uint8)
    name = resolve_contrast(contrast, rng)
    means, stds = sample_intensity_table(name, rng)
    img = means[tissue] + artifacts.texture(semantic.shape, rng) * stds[tissue]
    img = artifacts.blur(img, tuple(float(rng.uniform(0.0, 0.7)) for _ in range(3)))  # type: ignore[arg-type]
    if name == "ct":
        img = img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(5, 30))
    else:
        img = np.clip(img, 0.0, None) * artifacts.bias_field(semantic.shape, semantic.spacing_mm, 0.2, rng)
        img = artifacts.rician(img, float(rng.uniform(0.005, 0.04)), rng)
    return Volume(img.astype(np.float32), semantic.affine, semantic.source)
