"""Write synthetic cases to disk (NIfTI images + labels + metadata) with a PNG contact sheet."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurospine.io import save_volume, write_text_atomic
from neurospine.synth.case import SynthConfig, generate_case
from neurospine.synth.sheet import case_tile, contact_sheet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WrittenCase:
    seed: int
    files: dict[str, Path]


def write_cases(
    out_dir: str | Path, n: int, config: SynthConfig, first_seed: int = 0, sheet_name: str = "contact_sheet.png"
) -> tuple[list[WrittenCase], Path]:
    """Generate ``n`` cases with seeds ``first_seed ..`` and write them under ``out_dir``.

    Per case: ``synth-<seed>_img.nii.gz`` (image), ``_seg-spine.nii.gz`` (SPINEPS semantic),
    ``_seg-vert.nii.gz`` (instances), ``_cord-soft.nii.gz`` / ``_canal-soft.nii.gz`` (fractions),
    ``_tissue.nii.gz`` and ``_meta.json``; plus one contact sheet of mid-sagittal slices.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[WrittenCase] = []
    tiles = []
    for seed in range(first_seed, first_seed + n):
        case = generate_case(seed, config)
        stem = out / f"synth-{seed:05d}"
        files = {
            "image": save_volume(case.image, f"{stem}_img.nii.gz", dtype=np.float32),
            "semantic": save_volume(case.semantic, f"{stem}_seg-spine.nii.gz", dtype=np.uint8, is_label=True),
            "instance": save_volume(case.instance, f"{stem}_seg-vert.nii.gz", dtype=np.int16, is_label=True),
            "cord_soft": save_volume(case.cord_soft, f"{stem}_cord-soft.nii.gz", dtype=np.float32),
            "canal_soft": save_volume(case.canal_soft, f"{stem}_canal-soft.nii.gz", dtype=np.float32),
            "tissue": save_volume(case.tissue, f"{stem}_tissue.nii.gz", dtype=np.uint8, is_label=True),
            "meta": write_text_atomic(f"{stem}_meta.json", json.dumps(case.meta, indent=2) + "\n"),
        }
        levels = case.meta["levels_present"]
        span = f"{levels[0]}-{levels[-1]}" if levels else "no levels"
        tiles.append(case_tile(case.image, case.semantic, title=f"{seed} {case.meta['contrast']} {span}"))
        written.append(WrittenCase(seed, files))
        log.info("wrote synthetic case %d (%s, %s)", seed, case.meta["contrast"], span)
    sheet = contact_sheet(tiles, out / sheet_name)
    return written, sheet
