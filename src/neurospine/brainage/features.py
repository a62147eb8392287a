"""Reading FreeSurfer feature tables (CSV) and matching their columns to a model's features by name.

FreeSurfer versions spell a few regions differently. :data:`ALIASES` maps old spellings to the names the
shipped model uses (those of the OpenNeuro table): ``*-Thalamus-Proper`` -> ``*-Thalamus`` (aseg, FS < 7)
and five Destrieux labels whose ``&`` became ``_and_`` (or ``lg`` became ``lG``). An alias is applied
only when the table lacks the target name or holds only zeros in it.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from neurospine.errors import InputError

log = logging.getLogger(__name__)

#: columns never used as features
ID_COLUMNS = ("sub_id", "subject_id", "participant_id", "id", "age", "sex", "site", "sitenum", "avg_en")

_DESTRIEUX_RENAMES = {
    "G_Ins_lg&S_cent_ins": "G_Ins_lG&S_cent_ins",
    "S_intrapariet&P_trans": "S_intrapariet_and_P_trans",
    "S_oc_middle&Lunatus": "S_oc_middle_and_Lunatus",
    "S_oc_sup&transversal": "S_oc_sup_and_transversal",
    "S_oc-temp_med&Lingual": "S_oc-temp_med_and_Lingual",
}
ALIASES: dict[str, str] = {
    "Left-Thalamus-Proper": "Left-Thalamus",
    "Right-Thalamus-Proper": "Right-Thalamus",
    **{f"{h}_{old}_thickness": f"{h}_{new}_thickness" for h in ("lh", "rh") for old, new in _DESTRIEUX_RENAMES.items()},
}

#: Whole-brain summary measures of FreeSurfer's aseg.stats/aparc header ("# Measure" lines) and the surface
#: defect counts: often left out of regional exports. ``brainage_features_regional`` needs none of them.
GLOBAL_MEASURES: tuple[str, ...] = (
    "BrainSegVol",
    "BrainSegVolNotVent",
    "lhCortexVol",
    "rhCortexVol",
    "CortexVol",
    "lhCerebralWhiteMatterVol",
    "rhCerebralWhiteMatterVol",
    "CerebralWhiteMatterVol",
    "SubCortGrayVol",
    "TotalGrayVol",
    "SupraTentorialVol",
    "SupraTentorialVolNotVent",
    "MaskVol",
    "BrainSegVol-to-eTIV",
    "MaskVol-to-eTIV",
    "lhSurfaceHoles",
    "rhSurfaceHoles",
    "SurfaceHoles",
    "EstimatedTotalIntraCranialVol",
    "eTIV",
)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FeatureTable:
    """A numeric table: subject ids, column names, values (NaN where empty/non-numeric)."""

    path: str
    ids: list[str]
    columns: list[str]
    values: FloatArray  # (n_rows, n_columns)

    def column(self, name: str) -> FloatArray:
        return self.values[:, self.columns.index(name)]

    def has(self, name: str) -> bool:
        return name in self.columns

    def subset(self, rows: npt.NDArray[np.intp] | list[int]) -> FeatureTable:
        r = np.asarray(rows, dtype=np.intp)
        return FeatureTable(self.path, [self.ids[i] for i in r], self.columns, self.values[r])

    def missing(self, names: list[str]) -> list[str]:
        """Those of ``names`` the table lacks: no such column, or a column without a single numeric value."""
        out = []
        for n in names:
            if n not in self.columns or not np.isfinite(self.column(n)).any():
                out.append(n)
        return out

    def matrix(self, names: list[str], *, fix: str | None = None) -> FloatArray:
        """Columns ``names`` in that order; missing ones (:meth:`missing`) -> ``InputError`` listing all of them."""
        missing = self.missing(names)
        if missing:
            raise InputError(
                self.path,
                f"{len(missing)} feature column(s) the model needs are missing or empty: {list_names(missing)}",
                fix
                or "export the same FreeSurfer measures (aparc.a2009s thickness + aseg volumes) with "
                "these column names, or refit with `neurospine brainage fit` on your table",
            )
        idx = [self.columns.index(n) for n in names]
        return self.values[:, idx]


def list_names(names: list[str], limit: int = 25) -> str:
    """``a, b, c`` (the first ``limit`` names, then how many in all)."""
    shown = ", ".join(names[:limit])
    return shown + (f" ... ({len(names)} in all)" if len(names) > limit else "")


def regional_features(features: list[str]) -> list[str]:
    """``features`` without the whole-brain summary measures (:data:`GLOBAL_MEASURES`)."""
    drop = set(GLOBAL_MEASURES)
    return [f for f in features if f not in drop]


def _to_float(s: str) -> float:
    try:
        return float(s)
    except ValueError:
        return float("nan")


def _id_column(header: list[str]) -> int | None:
    for name in ("sub_id", "subject_id", "participant_id", "id", "subject", "ID"):
        if name in header:
            return header.index(name)
    return None


def read_table(path: str | Path) -> FeatureTable:
    """Read a CSV/TSV of features (first row = header). Duplicate headers keep the first column; the id
    column is ``sub_id``/``subject_id``/``participant_id``/``id`` (else the row number)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "file not found", "give the path of a CSV table with one row per subject")
    delim = "\t" if p.suffix.lower() in (".tsv", ".tab") else ","
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh, delimiter=delim))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(p, f"cannot read the table ({e})", "save it as a UTF-8 CSV with a header row") from e
    if len(rows) < 2:
        raise InputError(p, "table has no data rows", "give a CSV with a header row and one row per subject")
    header = [h.strip() for h in rows[0]]
    keep: list[int] = []
    seen: set[str] = set()
    for j, h in enumerate(header):
        if h and h not in seen:
            seen.add(h)
            keep.append(j)
    body = [r for r in rows[1:] if any(c.strip() for c in r)]
    bad = [i + 2 for i, r in enumerate(body) if len(r) != len(header)]
    if bad:
        raise InputError(
            p,
            f"rows {bad[:5]} do not have {len(header)} fields like the header",
            "fix the CSV (quote fields that contain the delimiter)",
        )
    id_col = _id_column(header)
    ids = [r[id_col].strip() for r in body] if id_col is not None else [str(i) for i in range(len(body))]
    cols = [header[j] for j in keep]
    vals = np.array([[_to_float(r[j]) for j in keep] for r in body], dtype=np.float64)
    table = FeatureTable(str(p), ids, cols, vals)
    return apply_aliases(table)


def apply_aliases(table: FeatureTable) -> FeatureTable:
    cols = list(table.columns)
    vals = table.values
    for old, new in ALIASES.items():
        if old not in cols:
            continue
        if new in cols:
            target = vals[:, cols.index(new)]
            if np.nan_to_num(target).any():
                continue
            cols[cols.index(new)] = f"{new}__unused"
        cols[cols.index(old)] = new
    return FeatureTable(table.path, table.ids, cols, vals)


def ages_of(table: FeatureTable, age_column: str) -> FloatArray:
    if not table.has(age_column):
        raise InputError(
            table.path,
            f"no age column '{age_column}'",
            f"name the age column with --age-column (columns start: {', '.join(table.columns[:6])})",
        )
    age = table.column(age_column)
    if not np.isfinite(age).all():
        bad = [table.ids[i] for i in np.flatnonzero(~np.isfinite(age))[:5]]
        raise InputError(
            table.path,
            f"age missing or not numeric for {len(bad)}+ subjects (e.g. {bad})",
            "fill in or remove those rows",
        )
    return age


def candidate_features(table: FeatureTable, age_column: str = "age") -> list[str]:
    """Numeric, non-identifier columns that are non-zero in at least half the rows and not constant."""
    out = []
    for j, name in enumerate(table.columns):
        if name in ID_COLUMNS or name == age_column or name.endswith("__unused"):
            continue
        v = table.values[:, j]
        if not np.isfinite(v).all():
            continue
        if (v != 0).mean() < 0.5 or np.std(v) == 0:
            continue
        out.append(name)
    return out
