"""2D training pairs: mid-sagittal MR/CT slices and lateral X-ray projections with body/disc instances.

``generate_slice2d`` returns ``(image, bodies, discs, spacing_mm, meta)``. Arrays are indexed
``[row, col]`` with rows running superior -> inferior and columns posterior -> anterior (the patient
faces image-right), i.e. the usual radiological display of a sagittal slice. ``spacing_mm`` is
``(row_mm, col_mm)``. ``bodies`` holds vertebral-body instances (corpus + both endplates, labelled with
the vertebra id C2=2 .. L5=24, L6=25, T13=28; the sacrum is not included) and ``discs`` the disc
instances (100 + id of the vertebra above).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.synth.case import SynthCase, SynthConfig, generate_case

MODALITIES = ("mr", "ct", "xray")
#: Linear attenuation of water at a typical diagnostic energy (1/mm), for the projection model.
MU_WATER_PER_MM = 0.02


def _to_display(arr: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """(A, S) plane of a RAS volume slice -> rows S->I, cols P->A."""
    return np.ascontiguousarray(arr.T[::-1])


def _to_display_ap(arr: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """(R, S) plane -> rows S->I, cols patient right -> left (radiological AP display)."""
    return np.ascontiguousarray(arr.T[::-1, ::-1])


def _bodies_from(semantic: npt.NDArray[Any], instance: npt.NDArray[Any]) -> npt.NDArray[np.int16]:
    """Vertebral bodies: corpus pixels keep their vertebra id; endplates join the nearest corpus."""
    corpus = (semantic == 49) & (instance > 0) & (instance < 100)
    bodies = np.where(corpus, instance, 0).astype(np.int16)
    endplate = semantic == 62
    if corpus.any() and endplate.any():
        _, idx = ndimage.distance_transform_edt(~corpus, return_indices=True)
        nearest = bodies[tuple(idx)]
        bodies[endplate] = nearest[endplate]
    return bodies


Sample2D = tuple[npt.NDArray[np.float32], npt.NDArray[np.int16], npt.NDArray[np.int16], tuple[float, float]]


def generate_slice2d(
    seed: int, modality: str = "mr", *, levels: str | None = None, view: str = "lateral"
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int16], npt.NDArray[np.int16], tuple[float, float], dict[str, Any]]:
    """One 2D sample; deterministic from ``seed``. ``modality`` is ``"mr"``, ``"ct"`` or ``"xray"``.

    ``view`` applies to X-rays: ``"lateral"`` (rows S->I, cols P->A) or ``"ap"`` (rows S->I, cols
    patient right -> left, as a radiograph viewed from the front).
    """
    if view not in ("lateral", "ap"):
        raise ValueError(f"view must be 'lateral' or 'ap', got {view!r}")
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    rng = np.random.default_rng([seed, 2])
    lv = levels or str(
        rng.choice(["T10-S1", "L1-S1", "T11-L5", "T12-S1", "random", "T6-L2"], p=[0.2, 0.3, 0.15, 0.15, 0.1, 0.1])
    )
    inplane = float(rng.uniform(0.5, 1.2))
    if modality == "xray":
        (image2d, bodies2d, discs2d, spacing), case = _xray(seed, lv, view, rng)
    else:
        (image2d, bodies2d, discs2d, spacing), case = _slice(seed, lv, modality, inplane, rng)
    meta = dict(case.meta)
    cols = "right->left" if (modality == "xray" and view == "ap") else "posterior->anterior"
    meta.update(
        {
            "modality2d": modality,
            "view": view if modality == "xray" else "sagittal",
            "rows": "superior->inferior",
            "cols": cols,
        }
    )
    return image2d.astype(np.float32), bodies2d.astype(np.int16), discs2d.astype(np.int16), spacing, meta


def _xray(seed: int, levels: str, view: str, rng: np.random.Generator) -> tuple[Sample2D, SynthCase]:
    """Lateral or AP radiograph: line integrals of attenuation through a synthetic CT."""
    ax = 0 if view == "lateral" else 1  # integration axis: L-R for lateral, A-P for AP views
    sp = (2.0, 1.5, 1.5) if ax == 0 else (1.5, 2.0, 1.5)
    cfg = SynthConfig(
        levels=levels,
        contrast="ct",
        plane="isotropic",
        spacing_mm=sp,
        fov_mm=(240.0, 240.0, None) if ax == 0 else (260.0, 260.0, None),
        margin_mm=40.0,
        soft_labels=False,
        p_ghosting=0.0,
        p_wrap=0.0,
        blur_vox=(0.3, 0.8),
    )
    case = generate_case(seed, cfg)
    hu = case.image.data.astype(np.float32)
    mu = np.clip(hu + 1000.0, 0.0, None) * np.float32(MU_WATER_PER_MM / 1000.0)
    path = mu.sum(axis=ax) * np.float32(sp[ax])  # line integral along the beam
    # detector: log-attenuation (the line integral) windowed to the body, with a random contrast curve
    body = path > np.float32(0.2)
    lo = float(np.percentile(path[body], 2)) if body.any() else 0.0
    hi = float(np.percentile(path, 99.8))
    img = np.clip((path - lo) / max(hi - lo, 1e-6), 0.0, 1.0) ** float(np.exp(rng.normal(0.0, 0.3)))
    img[~body] = 0.0
    img = ndimage.gaussian_filter(img, float(rng.uniform(0.3, 1.2)))
    img = img + rng.normal(0.0, float(rng.uniform(0.003, 0.02)), img.shape)
    sem = case.semantic.data
    ins = case.instance.data
    # bodies: corpus projection, labelled by the vertebra whose corpus is crossed most along the ray
    bodies_p = np.zeros(path.shape, dtype=np.int16)
    count = np.zeros(path.shape, dtype=np.int32)
    for vid in case.meta["vertebra_ids_present"]:
        if vid == 26:
            continue
        c = ((sem == 49) & (ins == vid)).sum(axis=ax)
        better = c > count
        bodies_p[better] = vid
        count[better] = c[better]
    # endplates (which carry disc-style ids) join the nearest body in projection
    ep = ((sem == 62).any(axis=ax)) & (bodies_p == 0)
    if ep.any() and (bodies_p > 0).any():
        _, idx = ndimage.distance_transform_edt(bodies_p == 0, return_indices=True)
        bodies_p[ep] = bodies_p[tuple(idx)][ep]
    discs_p = np.where(sem == 100, ins, 0).max(axis=ax).astype(np.int16)
    discs_p[bodies_p > 0] = 0  # where a body and a disc overlap in projection, the body wins
    show = _to_display if ax == 0 else _to_display_ap
    spacing = (sp[2], sp[1] if ax == 0 else sp[0])
    return (show(img.astype(np.float32)), show(bodies_p), show(discs_p), spacing), case


def _slice(
    seed: int, levels: str, modality: str, inplane: float, rng: np.random.Generator
) -> tuple[Sample2D, SynthCase]:
    """One thick mid-sagittal MR or CT slice."""
    thickness = float(rng.uniform(3.0, 5.0)) if modality == "mr" else float(rng.uniform(1.0, 3.0))
    contrast = "ct" if modality == "ct" else str(rng.choice(["t2w", "t2w", "t1w", "stir", "random"]))
    cfg = SynthConfig(
        levels=levels,
        contrast=contrast,
        plane="sagittal",
        spacing_mm=(inplane, inplane, thickness),
        fov_mm=(thickness, float(rng.uniform(160.0, 300.0)), None),
        margin_mm=float(rng.uniform(10, 60)),
        soft_labels=False,
    )
    case = generate_case(seed, cfg)
    k = case.image.shape[0] // 2
    sem2 = case.semantic.data[k]
    ins2 = case.instance.data[k]
    image2d = _to_display(case.image.data[k])
    bodies2d = _to_display(_bodies_from(sem2, ins2))
    discs2d = _to_display(np.where(sem2 == 100, ins2, 0).astype(np.int16))
    spacing = (float(case.image.spacing_mm[2]), float(case.image.spacing_mm[1]))
    return (image2d, bodies2d, discs2d, spacing), case
