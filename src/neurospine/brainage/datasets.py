"""The shared brain-feature tables (OpenNeuro CC0 + fcon1000) assembled for training and benchmarks.

Quirks handled here: the OpenNeuro ``_tr`` and ``_te`` files share 9 subject ids with conflicting ages
(dropped from both); fcon1000 uses older FreeSurfer spellings (``*-Thalamus-Proper`` and five Destrieux
names, see :data:`features.ALIASES`). The feature set is every column that is numeric, mostly non-zero
and non-constant in *both* sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from neurospine.brainage.features import FeatureTable, candidate_features, read_table
from neurospine.errors import InputError

DEFAULT_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "brain_features"
OPENNEURO_FILES = ("data_OpenNeuroTransfer_ct_tr.csv", "data_OpenNeuroTransfer_ct_te.csv")
FCON_FILE = "data_fcon1000.csv"


@dataclass(frozen=True)
class Pooled:
    ids: list[str]
    x: npt.NDArray[np.float64]
    age: npt.NDArray[np.float64]
    dataset: npt.NDArray[np.str_]  # "openneuro" or "fcon1000"
    site: npt.NDArray[np.str_]  # OpenNeuro dataset id or fcon1000 site
    features: list[str]


def _site_column(table: FeatureTable, raw_path: Path) -> list[str]:
    import csv

    with raw_path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        return [str(r.get("site", "")) for r in reader]


def load_pooled(folder: Path = DEFAULT_DIR) -> Pooled:
    if not folder.is_dir():
        raise InputError(folder, "brain feature folder not found", "pass --data pointing at brain_features/")
    on = [read_table(folder / f) for f in OPENNEURO_FILES]
    on_sites = [_site_column(t, folder / f) for t, f in zip(on, OPENNEURO_FILES, strict=True)]
    fc = read_table(folder / FCON_FILE)
    fc_sites = _site_column(fc, folder / FCON_FILE)
    dup = set(on[0].ids) & set(on[1].ids)
    feats_on = set(candidate_features(on[0])) & set(candidate_features(on[1]))
    feats_fc = set(candidate_features(fc))
    features = [f for f in on[0].columns if f in feats_on and f in feats_fc]
    ids: list[str] = []
    xs, ages, ds, sites = [], [], [], []
    for t, s, name in (
        (on[0], on_sites[0], "openneuro"),
        (on[1], on_sites[1], "openneuro"),
        (fc, fc_sites, "fcon1000"),
    ):
        keep = [i for i, sid in enumerate(t.ids) if sid not in dup]
        sub = t.subset(keep)
        ids += sub.ids
        xs.append(sub.matrix(features))
        ages.append(sub.column("age"))
        ds += [name] * len(keep)
        sites += [s[i] for i in keep]
    return Pooled(ids, np.concatenate(xs), np.concatenate(ages), np.array(ds), np.array(sites), features)
