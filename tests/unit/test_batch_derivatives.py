"""Batch output is a BIDS derivatives dataset: checked against the rules we rely on (written out below).

The official validator is not installable here as a Python package (pip ``bids-validator`` only checks raw
paths; npm's 1.x validator rejects every derivative file name as NOT_INCLUDED), so the rules are tested here:

1. ``dataset_description.json``: Name, BIDSVersion, ``DatasetType: derivative``, GeneratedBy[].Name (+Version);
   ``DatasetLinks.raw`` points at the raw dataset when the input was a folder.
2. Subject data only in ``sub-<label>/[ses-<label>/]anat/``; at the root only the description, README,
   ``.bidsignore``, ``*_dseg.tsv`` label tables and the files ``.bidsignore`` lists.
3. File names: ``sub-<label>[_ses-<label>](_<key>-<value>)*_<suffix><ext>``, alphanumeric labels, each key once,
   sub/ses equal to the folders.
4. Every non-JSON file has a JSON sidecar of the same name with ``Sources`` (BIDS URIs that resolve to the
   input in the raw dataset) and the software version; model outputs list their models with sha256.
5. Label tables: ``index``, ``name``, ``color`` columns, unique integer indices.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from pathlib import Path

import pytest

from neurospine.batch import BatchConfig, run_batch
from neurospine.batch.bids import Scan
from neurospine.batch.demo import make_demo_dataset
from neurospine.batch.layout import output_name
from neurospine.io import save_volume
from tests.unit.test_spine_support import lumbar_phantom, write_threshold_model

NAME = re.compile(
    r"^sub-(?P<sub>[a-zA-Z0-9]+)(?:_ses-(?P<ses>[a-zA-Z0-9]+))?(?P<ents>(?:_[a-z]+-[a-zA-Z0-9]+)*)"
    r"_(?P<suffix>[a-zA-Z0-9]+)(?P<ext>\.nii\.gz|\.nii|\.json|\.png|\.csv|\.tsv|\.dcm)$"
)


def bids_derivative_problems(root: Path) -> list[str]:
    """Every violation of rules 1-5 (see the module docstring) in the derivatives dataset at ``root``."""
    problems: list[str] = []
    desc = json.loads((root / "dataset_description.json").read_text())
    for key in ("Name", "BIDSVersion"):
        if not desc.get(key):
            problems.append(f"dataset_description.json: no {key}")
    if desc.get("DatasetType") != "derivative":
        problems.append("dataset_description.json: DatasetType is not 'derivative'")
    gen = desc.get("GeneratedBy")
    if not isinstance(gen, list) or not gen or not all(g.get("Name") for g in gen):
        problems.append("dataset_description.json: GeneratedBy must be a non-empty list of objects with Name")
    raw = None
    if "raw" in desc.get("DatasetLinks", {}):
        raw = (root / desc["DatasetLinks"]["raw"]).resolve()
        if not any(raw.glob("sub-*")):
            problems.append(f"DatasetLinks.raw -> {raw} is not a BIDS dataset")
    ignored = [p for p in (root / ".bidsignore").read_text().split() if p]
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_dir() or any(part.startswith(".") for part in rel.parts):
            continue
        if any(fnmatch.fnmatch(rel.name, pat) for pat in ignored):
            continue
        if len(rel.parts) == 1:
            if rel.name not in ("dataset_description.json", "README.md") and not rel.name.endswith("_dseg.tsv"):
                problems.append(f"{rel}: unexpected file at the dataset root")
            continue
        folders, name = rel.parts[:-1], rel.name
        m = NAME.match(name)
        layout_ok = folders[0].startswith("sub-") and folders[-1] == "anat" and len(folders) in (2, 3)
        if len(folders) == 3:
            layout_ok = layout_ok and folders[1].startswith("ses-")
        if not layout_ok:
            problems.append(f"{rel}: not in sub-*/[ses-*/]anat/")
            continue
        if m is None:
            problems.append(f"{rel}: name is not sub-<label>[_ses-<label>](_key-value)*_suffix.ext")
            continue
        if f"sub-{m['sub']}" != folders[0] or (len(folders) == 3 and f"ses-{m['ses']}" != folders[1]):
            problems.append(f"{rel}: sub/ses in the name differ from the folders")
        keys = [e.split("-")[0] for e in m["ents"].split("_") if e]
        if len(keys) != len(set(keys)):
            problems.append(f"{rel}: an entity appears twice")
        if m["ext"] == ".json":
            continue
        side = path.with_name(name[: -len(m["ext"])] + ".json")
        if not side.is_file():
            problems.append(f"{rel}: no JSON sidecar")
            continue
        meta = json.loads(side.read_text())
        if not meta.get("SoftwareVersion"):
            problems.append(f"{side.name}: no SoftwareVersion")
        sources = meta.get("Sources")
        if not isinstance(sources, list) or not sources:
            problems.append(f"{side.name}: no Sources")
            continue
        for uri in sources:
            if uri.startswith("bids:raw:"):
                if raw is None or not (raw / uri[len("bids:raw:") :]).is_file():
                    problems.append(f"{side.name}: source {uri} does not resolve")
            elif not uri.startswith("file://"):
                problems.append(f"{side.name}: source {uri} is not a BIDS or file URI")
        for model in meta.get("Models", []):
            if not re.fullmatch(r"[0-9a-f]{64}", str(model.get("SHA256"))):
                problems.append(f"{side.name}: model {model.get('Name')} without sha256")
    for table in root.glob("*_dseg.tsv"):
        lines = table.read_text().splitlines()
        if lines[0].split("\t")[:3] != ["index", "name", "color"]:
            problems.append(f"{table.name}: columns must start index, name, color")
        idx = [int(line.split("\t")[0]) for line in lines[1:]]
        if len(idx) != len(set(idx)):
            problems.append(f"{table.name}: repeated index")
    return problems


@pytest.fixture
def spine_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_threshold_model(tmp_path / "models")
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(tmp_path / "models"))
    ds = tmp_path / "ds"
    make_demo_dataset(ds, n_subjects=2, sessions=("1",), shape=(8, 32, 48))
    save_volume(lumbar_phantom("LAS"), ds / "sub-003/ses-1/anat/sub-003_ses-1_acq-sag_run-2_T2w.nii.gz")
    return ds


def test_batch_writes_a_valid_derivatives_dataset(spine_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    s = run_batch(BatchConfig(spine_dataset, out, tasks=["info", "selftest"], progress=False))
    assert s.failed == 0 and s.done == 6
    s = run_batch(BatchConfig(spine_dataset, out, tasks=["spine"], subjects=["003"], progress=False))
    assert s.failed == 0 and s.done == 1
    root = out / "derivatives/neurospine"
    assert bids_derivative_problems(root) == []
    anat = root / "sub-003/ses-1/anat"
    prefix = "sub-003_ses-1_acq-sag_run-2_mod-T2w"
    for suffix in ("_seg-spine_msk.nii.gz", "_seg-vert_msk.nii.gz", "_seg-spine_ctd.json", "_seg-spine_snp.png"):
        assert (anat / f"{prefix}{suffix}").is_file(), suffix  # SPINEPS's own names
    side = json.loads((anat / f"{prefix}_seg-vert_msk.json").read_text())
    assert side["Sources"] == ["bids:raw:sub-003/ses-1/anat/sub-003_ses-1_acq-sag_run-2_T2w.nii.gz"]
    assert side["Models"][0]["Name"] == "spine_semantic" and side["Task"] == "spine"
    assert "snapshot" not in side["Options"] and side["SoftwareVersion"]
    assert (anat / f"{prefix}_desc-selftest_fgmask.nii.gz").is_file()  # another task never takes info's names
    assert (anat / f"{prefix}_fgmask.nii.gz").is_file()
    vert = (root / "seg-vert_dseg.tsv").read_text().splitlines()
    assert "20\tL1\t" in "\n".join(vert) and vert[0] == "index\tname\tcolor"
    # the rule checker does catch a broken dataset
    (anat / f"{prefix}_seg-vert_msk.json").unlink()
    (root / "sub-003/stray_T2w.nii.gz").write_bytes(b"x")
    bad = bids_derivative_problems(root)
    assert any("no JSON sidecar" in p for p in bad) and any("not in sub-*/[ses-*/]anat/" in p for p in bad)


def test_raw_link_is_relative_when_out_is_the_dataset(spine_dataset: Path) -> None:
    s = run_batch(BatchConfig(spine_dataset, spine_dataset, tasks=["info"], progress=False))
    assert s.failed == 0
    root = spine_dataset / "derivatives/neurospine"
    desc = json.loads((root / "dataset_description.json").read_text())
    assert desc["DatasetLinks"]["raw"] == os.path.join("..", "..")
    assert bids_derivative_problems(root) == []


@pytest.mark.parametrize(
    ("stem", "entities", "suffix", "written", "expected"),
    [
        ("sub-01_T2w", {"sub": "01"}, "T2w", "sub-01_T2w_seg-spine_msk.nii.gz", "sub-01_mod-T2w_seg-spine_msk.nii.gz"),
        (
            "sub-01_ses-2_acq-sag_T2w",
            {"sub": "01", "ses": "2", "acq": "sag"},
            "T2w",
            "sub-01_ses-2_acq-sag_T2w_seg-vert_msk.nii.gz",
            "sub-01_ses-2_acq-sag_mod-T2w_seg-vert_msk.nii.gz",
        ),
        ("sub-01_T2w", {"sub": "01"}, "T2w", "sub-01_T2w_csa_perlevel.csv", "sub-01_mod-T2w_desc-csa_perlevel.csv"),
        ("sub-01_T2w", {"sub": "01"}, "T2w", "sub-01_T2w_qc-cord.png", "sub-01_mod-T2w_qc-cord_snp.png"),
        ("case_7", {"sub": "case7"}, None, "case_7_seg-spine_msk.nii.gz", "sub-case7_seg-spine_msk.nii.gz"),
    ],
)
def test_output_names(stem: str, entities: dict[str, str], suffix: str | None, written: str, expected: str) -> None:
    scan = Scan(Path(f"/d/{stem}.nii.gz"), entities["sub"], entities.get("ses"), suffix, entities)
    assert output_name(scan, written) == expected
    assert NAME.match(expected)
