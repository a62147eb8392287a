"""A small synthetic BIDS dataset to try ``neurospine batch`` (and to test and benchmark it).

Scans are simple sagittal phantoms (a column of bright blocks for vertebral bodies, darker discs, a
cord-like tube in fluid) with noise; not anatomy, just realistic enough shapes, sizes and headers.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np


def phantom(
    shape: tuple[int, int, int] = (24, 96, 160), spacing_mm: tuple[float, float, float] = (3.0, 1.0, 1.0), seed: int = 0
) -> nib.Nifti1Image:
    """Sagittal T2w-like phantom on an LAS-ish grid: x = L-R (thick), y = A-P, z = S-I."""
    rng = np.random.default_rng(seed)
    nx, ny, nz = shape
    img = rng.normal(60.0, 8.0, shape).astype(np.float32)
    x, y, z = np.meshgrid(np.arange(nx), np.arange(ny), np.arange(nz), indexing="ij")
    cx = nx / 2 + rng.uniform(-1, 1)
    body = np.abs(x - cx) * spacing_mm[0] < 18
    level_h = rng.uniform(26, 32)  # vertebra + disc height in voxels (z spacing 1 mm)
    phase = (z + rng.uniform(0, level_h)) % level_h
    vert = body & (np.abs(y - ny * 0.35) < ny * 0.14) & (phase < level_h * 0.75)
    disc = body & (np.abs(y - ny * 0.35) < ny * 0.13) & (phase >= level_h * 0.75)
    canal = np.hypot((x - cx) * spacing_mm[0], (y - ny * 0.62) * spacing_mm[1]) < 8
    cord = np.hypot((x - cx) * spacing_mm[0], (y - ny * 0.62) * spacing_mm[1]) < 4
    img[vert] += 140
    img[disc] += 220
    img[canal] += 260
    img[cord] -= 180
    img = np.clip(img, 0, None)
    affine = np.diag([-spacing_mm[0], spacing_mm[1], spacing_mm[2], 1.0])
    affine[:3, 3] = [nx * spacing_mm[0] / 2, -ny * spacing_mm[1] / 2, -nz * spacing_mm[2] / 2]
    out = nib.Nifti1Image(img, affine)
    out.set_qform(affine, code=1)
    out.set_sform(affine, code=1)
    return out


def make_demo_dataset(
    root: str | Path,
    *,
    n_subjects: int = 4,
    sessions: tuple[str, ...] = (),
    shape: tuple[int, int, int] = (24, 96, 160),
    corrupt: int = 0,
    t1w: bool = False,
    seed: int = 0,
) -> list[Path]:
    """Write ``n_subjects`` sagittal T2w phantoms as a BIDS dataset; ``corrupt`` of them are broken files.

    Returns the image paths. With ``t1w`` every subject also gets a T1w scan.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(
        '{"Name": "neurospine demo phantoms", "BIDSVersion": "1.9.0", "DatasetType": "raw"}\n', encoding="utf-8"
    )
    paths: list[Path] = []
    rng = np.random.default_rng(seed)
    for i in range(n_subjects):
        sub = f"{i + 1:03d}"
        for ses in sessions or (None,):
            folder = root / f"sub-{sub}" / (f"ses-{ses}" if ses else "") / "anat"
            folder.mkdir(parents=True, exist_ok=True)
            prefix = f"sub-{sub}_" + (f"ses-{ses}_" if ses else "")
            names = [f"{prefix}acq-sag_T2w.nii.gz"] + ([f"{prefix}acq-sag_T1w.nii.gz"] if t1w else [])
            for name in names:
                p = folder / name
                nib.save(phantom(shape, seed=int(rng.integers(1 << 31))), str(p))
                paths.append(p)
    for p in paths[len(paths) - corrupt :] if corrupt else []:
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 3])  # truncated gzip stream: unreadable
    return paths
