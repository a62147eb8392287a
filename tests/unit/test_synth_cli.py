"""``neurospine synth`` writes NIfTI cases and a contact sheet; bad options exit 2."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
from PIL import Image

from neurospine.cli.main import main


def test_synth_cli_writes_cases_and_sheet(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "synth"
    rc = main(["synth", "--n", "2", "--contrast", "t2w", "--levels", "L2-L5", "--fov", "40", "120", "--out", str(out)])
    assert rc == 0
    for seed in (0, 1):
        img = nib.load(out / f"synth-{seed:05d}_img.nii.gz")
        sem = nib.load(out / f"synth-{seed:05d}_seg-spine.nii.gz")
        vert = nib.load(out / f"synth-{seed:05d}_seg-vert.nii.gz")
        assert img.shape == sem.shape == vert.shape
        assert np.allclose(img.affine, sem.affine)
        assert nib.aff2axcodes(img.affine) == ("R", "A", "S")
        meta = json.loads((out / f"synth-{seed:05d}_meta.json").read_text())
        assert meta["seed"] == seed and meta["contrast"] == "t2w"
        assert 60 in np.unique(np.asarray(sem.dataobj)) or 61 in np.unique(np.asarray(sem.dataobj))
    sheet = Image.open(out / "contact_sheet.png")
    assert sheet.width > 100 and sheet.height > 100


def test_synth_cli_bad_contrast_exits_2(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    rc = main(["synth", "--n", "1", "--contrast", "pd", "--out", str(tmp_path / "x")])
    assert rc == 2
    assert "unknown contrast" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # options are checked before anything is written
