"""Chronological ages for ``neurospine brainage t1 --ages``: read the CSV, find the id column, match images.

The id column is ``--id-column`` when given, else the first of :data:`ID_COLUMNS` present (names compared
case-insensitively); the age column is ``age``. An image matches a row whose id is its file name or its
stem (``sub-01_T1w`` for ``sub-01_T1w.nii.gz``), or whose id starts the stem followed by ``_``, ``-`` or
``.`` (``IXI012-HH-1211`` matches ``IXI012-HH-1211_T1.nii.gz``, ``sub-01`` matches ``sub-01_T1w``; the
longest such id wins), or, when the CSV has a ``file`` or ``path`` column, whose file name is the image's.
Every image without an age gets one warning line; its age and gap stay empty.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from neurospine.errors import InputError
from neurospine.io import stem_of

log = logging.getLogger(__name__)

#: id columns looked for, in this order, when ``--id-column`` is not given
ID_COLUMNS: tuple[str, ...] = ("id", "sub_id", "participant_id", "ixi_id", "subject_id")
AGE_COLUMN = "age"
FILE_COLUMNS: tuple[str, ...] = ("file", "path")
SEPARATORS = ("_", "-", ".")


@dataclass(frozen=True)
class AgeTable:
    path: str
    id_column: str
    #: id -> age (rows with an empty or non-numeric age are left out)
    ages: dict[str, float]
    #: file name (of a ``file``/``path`` column) -> age
    by_file: dict[str, float]

    def age_of(self, image: str | Path) -> float | None:
        """The age of ``image`` by the module's matching rules, None when no row matches."""
        name = Path(str(image).rstrip("/")).name
        stem = stem_of(image)
        for key in (name, stem):
            if key in self.ages:
                return self.ages[key]
        if name in self.by_file:
            return self.by_file[name]
        prefixes = [i for i in self.ages if any(stem.startswith(i + sep) for sep in SEPARATORS)]
        if prefixes:
            return self.ages[max(prefixes, key=len)]
        return None


def _column(header: list[str], wanted: str) -> int | None:
    low = [h.strip().lower() for h in header]
    return low.index(wanted.lower()) if wanted.lower() in low else None


def read_ages(path: str | Path, id_column: str | None = None) -> AgeTable:
    """Read an ages CSV/TSV (module doc); ``InputError`` when its id or age column cannot be found."""
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "ages file not found", "give a CSV with an id column and an age column")
    delim = "\t" if p.suffix.lower() in (".tsv", ".tab") else ","
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh, delimiter=delim) if any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(p, f"cannot read the ages table ({e})", "save it as a UTF-8 CSV with a header row") from e
    if not rows:
        raise InputError(p, "the ages table is empty", "give a CSV with a header row, an id and an age column")
    header = [h.strip() for h in rows[0]]
    looked_for = (id_column,) if id_column else ID_COLUMNS
    id_idx = next((j for j in (_column(header, c) for c in looked_for) if j is not None), None)
    if id_idx is None:
        how = f"--id-column {id_column}" if id_column else "no --id-column given"
        raise InputError(
            p,
            f"no id column found: looked for {', '.join(looked_for)} ({how}); the columns are "
            f"{', '.join(header[:12])}" + (" ..." if len(header) > 12 else ""),
            "name the column that holds the image names with --id-column NAME, or rename it to id",
        )
    age_idx = _column(header, AGE_COLUMN)
    if age_idx is None:
        raise InputError(
            p,
            f"no '{AGE_COLUMN}' column (columns: {', '.join(header[:12])})",
            "give a CSV with an age column in years",
        )
    file_idx = next((j for j in (_column(header, c) for c in FILE_COLUMNS) if j is not None), None)
    ages: dict[str, float] = {}
    by_file: dict[str, float] = {}
    for line, r in enumerate(rows[1:], start=2):
        cells = r + [""] * (len(header) - len(r))
        try:
            age = float(cells[age_idx])
        except ValueError:
            continue
        if not math.isfinite(age):
            continue
        sid = cells[id_idx].strip()
        if sid:
            if sid in ages and ages[sid] != age:
                raise InputError(
                    p,
                    f"id {sid} appears twice with different ages ({ages[sid]:g} and {age:g}, line {line})",
                    "keep one row per subject",
                )
            ages[sid] = age
        if file_idx is not None and cells[file_idx].strip():
            by_file[Path(cells[file_idx].strip()).name] = age
    return AgeTable(str(p), header[id_idx], ages, by_file)


def ages_for_images(path: str | Path, images: Sequence[str | Path], id_column: str | None = None) -> dict[str, float]:
    """``{stem of image: age}`` for the images that have an age; one warning line per image without one."""
    table = read_ages(path, id_column)
    out: dict[str, float] = {}
    for image in images:
        age = table.age_of(image)
        if age is None:
            log.warning(
                "%s: no age in %s (no id in column %s matches %s); age and gap left empty",
                image,
                table.path,
                table.id_column,
                stem_of(image),
            )
            continue
        out[stem_of(image)] = age
    return out
