"""BIDS-derivatives layout of batch results: flat ``sub-*/[ses-*/]anat/`` folders, SPINEPS-style names, sidecars.

A task writes ``<input stem><rest>`` files (``sub-01_acq-sag_T2w_seg-spine_msk.nii.gz``); in the derivatives
tree each becomes ``<entities>_mod-<input suffix><rest>`` (``sub-01_acq-sag_mod-T2w_seg-spine_msk.nii.gz``,
the name SPINEPS gives the same mask), with a JSON sidecar of the same name (Sources, task, models with
version and sha256, software version, options). Every case also leaves ``<prefix>_desc-<task>_provenance.json``
(the full manifest, written last: its presence marks a complete case). Label tables (``seg-spine_dseg.tsv``,
``seg-vert_dseg.tsv``) and ``dataset_description.json`` sit at the dataset root.

Installing a case is a sequence of renames journalled in the trash folder, so a kill at any point leaves
either the complete case or, after ``recover`` at the next start, none of its files.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neurospine.batch.bids import ENTITY_ORDER, Scan

log = logging.getLogger(__name__)

PROVENANCE_SUFFIX = "provenance"
JOURNAL_SUFFIX = ".journal.json"
BIDS_VERSION = "1.9.0"
#: files at the dataset root that are not BIDS; listed in .bidsignore
NON_BIDS = ("neurospine.sqlite3*", "qc_report.html", "*.csv", ".neurospine*")
#: tasks whose output names are distinct from each other's; any other task's names carry ``desc-<task>``
OWN_NAMES = ("spine", "cord", "slice2d", "brainage-t1", "info")
_KV = re.compile(r"^[a-z]+-[a-zA-Z0-9]+$")
_EXTENSIONS = (".nii.gz", ".nii", ".json", ".csv", ".tsv", ".png", ".dcm", ".txt")


def _alnum(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]", "", text) or "x"


def anat_dir(scan: Scan) -> Path:
    """``sub-X/[ses-Y/]anat`` relative to the derivatives root."""
    base = Path(f"sub-{_alnum(scan.subject)}")
    if scan.session:
        base = base / f"ses-{_alnum(scan.session)}"
    return base / "anat"


def bids_prefix(scan: Scan) -> str:
    """``sub-01_ses-1_acq-sag_mod-T2w``: the scan's entities in BIDS order plus ``mod-<its suffix>``."""
    ents = {k: v for k, v in scan.entities.items() if k not in ("sub", "ses", "mod")}
    parts = [f"sub-{_alnum(scan.subject)}"]
    if scan.session:
        parts.append(f"ses-{_alnum(scan.session)}")
    ordered = [k for k in ENTITY_ORDER if k in ents] + sorted(k for k in ents if k not in ENTITY_ORDER)
    parts += [f"{_alnum(k).lower()}-{_alnum(ents[k])}" for k in ordered]
    if scan.suffix:
        parts.append(f"mod-{_alnum(scan.suffix)}")
    return "_".join(parts)


def split_extension(name: str) -> tuple[str, str]:
    low = name.lower()
    for ext in _EXTENSIONS:
        if low.endswith(ext):
            return name[: -len(ext)], name[-len(ext) :]
    stem, dot, ext = name.rpartition(".")
    return (stem, dot + ext) if dot else (name, "")


def _default_suffix(ext: str) -> str:
    return {".png": "snp", ".nii.gz": "msk", ".nii": "msk", ".dcm": "msk"}.get(ext.lower(), "data")


def output_name(scan: Scan, filename: str, task: str | None = None) -> str:
    """Derivatives name of a task output: the input stem replaced by ``bids_prefix``, then made BIDS-shaped.

    ``key-value`` parts are kept in order; the last plain word is the suffix; earlier plain words become a
    ``desc-`` entity (``_csa_perlevel.csv`` -> ``_desc-csa_perlevel.csv``); a name ending in a ``key-value``
    part gets a suffix from its type (``_qc-cord.png`` -> ``_qc-cord_snp.png``). A ``task`` outside
    ``OWN_NAMES`` is named in a ``desc-`` entity, so two tasks on one scan never write the same file."""
    stem, ext = split_extension(filename)
    rest = stem[len(scan.stem) :] if stem.startswith(scan.stem) else f"_{stem}"
    words = [w for w in rest.split("_") if w]
    kv = [w for w in words if _KV.match(w)]
    plain = [_alnum(w) for w in words if not _KV.match(w)]
    desc = "".join(plain[:-1])
    suffix = plain[-1] if plain else _default_suffix(ext)
    if task is not None and task not in OWN_NAMES:
        desc = _alnum(task) + desc
    if desc:
        given = next((i for i, w in enumerate(kv) if w.startswith("desc-")), None)
        if given is None:
            kv.append(f"desc-{desc}")
        else:
            kv[given] = f"desc-{desc}{kv[given][5:]}"
    return "_".join([bids_prefix(scan), *kv, suffix]) + ext


def provenance_name(scan: Scan, task: str) -> str:
    return f"{bids_prefix(scan)}_desc-{_alnum(task)}_{PROVENANCE_SUFFIX}.json"


def sidecar_name(name: str) -> str | None:
    """``x_msk.nii.gz`` -> ``x_msk.json``; JSON outputs carry their own metadata (None)."""
    stem, ext = split_extension(name)
    return None if ext.lower() == ".json" else f"{stem}.json"


def source_uri(scan: Scan, raw_link: bool) -> str:
    """BIDS URI of the input (``bids:raw:sub-01/anat/x.nii.gz``) or a file URI when outside the raw dataset."""
    if raw_link and scan.dataset_root is not None:
        try:
            return f"bids:raw:{scan.path.relative_to(scan.dataset_root).as_posix()}"
        except ValueError:
            pass
    return scan.path.resolve().as_uri()


def sidecar(scan: Scan, key: str, manifest: Mapping[str, Any], raw_link: bool) -> dict[str, Any]:
    models = [
        {"Name": c.get("name"), "Version": c.get("version"), "SHA256": c.get("sha256")}
        for c in manifest.get("model_cards", [])
    ]
    return {
        "Description": f"neurospine {manifest.get('task')} output '{key}'",
        "Sources": [source_uri(scan, raw_link)],
        "SourceSHA256": manifest.get("input", {}).get("sha256"),
        "Task": manifest.get("task"),
        "Models": models,
        "SoftwareName": "neurospine",
        "SoftwareVersion": manifest.get("neurospine_version"),
        "Options": manifest.get("options", {}),
        "RunID": manifest.get("run_id"),
    }


class OutputConflict(RuntimeError):
    """Two cases of one scan would write the same file."""


@dataclass(frozen=True)
class Installed:
    output_dir: str  # anat folder, relative to the root
    manifest: str  # provenance JSON, relative to the root


def case_files(manifest: Mapping[str, Any]) -> list[str]:
    """Every file name a case put into its anat folder (outputs, sidecars, provenance)."""
    names = [str(v) for v in manifest.get("outputs", {}).values() if not Path(str(v)).is_absolute()]
    names += [str(v) for v in manifest.get("sidecars", [])]
    if manifest.get("provenance"):
        names.append(str(manifest["provenance"]))
    return names


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: Any) -> None:
    from neurospine.io import write_text_atomic

    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def install_case(
    root: Path,
    tmp: Path,
    scan: Scan,
    manifest_file: str,
    old_manifest: str | None,
    trash: Path,
    raw_link: bool,
) -> tuple[Installed, Path]:
    """Move a finished case from ``tmp`` into its anat folder; return where it went and the journal to finish.

    Order: journal (names about to appear), the older copy's files into the trash, outputs, sidecars, and the
    provenance file last. The caller commits the database, then calls ``finish(journal)``."""
    manifest = read_json(tmp / manifest_file)
    if manifest is None:
        raise RuntimeError(f"case folder {tmp} has no readable manifest")
    task = str(manifest.get("task"))
    rel_anat = anat_dir(scan)
    anat = root / rel_anat
    anat.mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    for key, rel in manifest.get("outputs", {}).items():
        if Path(str(rel)).is_absolute():
            continue
        names[str(key)] = output_name(scan, Path(str(rel)).name, task)
    if len(set(names.values())) != len(names):
        raise RuntimeError(f"two outputs of task {task} map to the same file name: {sorted(names.values())}")
    prov = provenance_name(scan, task)
    sidecars = {k: s for k, n in names.items() if (s := sidecar_name(n)) is not None}
    installed = [*names.values(), *sidecars.values(), prov]
    old = read_json(root / old_manifest) if old_manifest else None
    ours = set(case_files(old)) if old is not None else set()
    others: set[str] = set()
    for other in anat.glob(f"*_{PROVENANCE_SUFFIX}.json"):
        if other.name != prov:
            others.update(case_files(read_json(other) or {}))
    taken = sorted(n for n in installed if n in others and n not in ours)  # files no case claims are replaced
    if taken:
        raise OutputConflict(
            f"task {task} would replace {', '.join(taken)} in {rel_anat}, written by another task on this scan; "
            "run the two tasks into different --out folders"
        )
    trash.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    journal = trash / f"{token}{JOURNAL_SUFFIX}"
    _write_json(
        journal,
        {"run_id": manifest.get("run_id"), "case_key": manifest.get("case_key"), "anat": rel_anat.as_posix(),
         "installed": installed},
    )  # fmt: skip
    if old is not None and old_manifest:
        keep = trash / token
        keep.mkdir()
        old_dir = (root / old_manifest).parent
        for name in ours:
            if (old_dir / name).exists():
                os.rename(old_dir / name, keep / name)
    for key, name in names.items():
        os.replace(tmp / str(manifest["outputs"][key]), anat / name)
    for key, name in sidecars.items():
        _write_json(anat / name, sidecar(scan, key, manifest, raw_link))
    final = dict(manifest)
    final["outputs"] = {k: names.get(k, v) for k, v in manifest.get("outputs", {}).items()}
    final["sidecars"] = sorted(sidecars.values())
    final["provenance"] = prov
    _write_json(anat / prov, final)
    shutil.rmtree(tmp, ignore_errors=True)
    return Installed(rel_anat.as_posix(), (rel_anat / prov).as_posix()), journal


def finish(journal: Path) -> None:
    """The database holds the case: drop the older copy and the journal."""
    shutil.rmtree(journal.with_name(journal.name[: -len(JOURNAL_SUFFIX)]), ignore_errors=True)
    journal.unlink(missing_ok=True)


def recover(root: Path, trash: Path, committed: Mapping[str, str]) -> int:
    """Undo installs a kill interrupted: files of a journal whose case the database does not hold from that run
    are removed (the case then counts as not done and is computed again). ``committed``: case_key -> run_id."""
    undone = 0
    for journal in sorted(trash.glob(f"*{JOURNAL_SUFFIX}")) if trash.is_dir() else []:
        data = read_json(journal) or {}
        if committed.get(str(data.get("case_key"))) != data.get("run_id"):
            anat = root / str(data.get("anat", ""))
            for name in data.get("installed", []):
                (anat / str(name)).unlink(missing_ok=True)
            undone += 1
            log.info("removed the partly installed files of %s", data.get("case_key"))
        finish(journal)
    return undone


def dseg_table(kind: str) -> str:
    """BIDS ``dseg.tsv`` text (index, name, color) of the semantic or instance label table."""
    from neurospine.labels import all_label_rows

    lines = ["index\tname\tcolor"]
    for row in all_label_rows(kind):
        r, g, b = row.rgb
        lines.append(f"{row.value}\t{row.name}\t#{r:02x}{g:02x}{b:02x}")
    return "\n".join(lines) + "\n"


def write_dataset_files(root: Path, dataset: str | Path, raw_link: bool) -> None:
    """``dataset_description.json``, label tables, README and ``.bidsignore`` at the derivatives root."""
    from neurospine import __version__
    from neurospine.io import write_text_atomic

    src = Path(dataset)
    desc: dict[str, Any] = {
        "Name": "neurospine derivatives",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [
            {
                "Name": "neurospine",
                "Version": __version__,
                "Description": "spine and brain MRI masks and biomarkers (CPU)",
            }
        ],
        "SourceDatasets": [{"URL": src.resolve().as_uri() if src.exists() else str(dataset)}],
    }
    if raw_link:
        desc["DatasetLinks"] = {"raw": os.path.relpath(src.resolve(), root.resolve())}
    _write_json(root / "dataset_description.json", desc)
    write_text_atomic(root / "seg-spine_dseg.tsv", dseg_table("semantic"))
    write_text_atomic(root / "seg-vert_dseg.tsv", dseg_table("instance"))
    write_text_atomic(root / ".bidsignore", "\n".join(NON_BIDS) + "\n")
    if not (root / "README.md").exists():
        write_text_atomic(
            root / "README.md",
            "# neurospine derivatives\n\nWritten by `neurospine batch`. Each output has a JSON sidecar; "
            "`*_provenance.json` holds a case's full manifest; `neurospine.sqlite3` the results database; "
            "`seg-spine_dseg.tsv` and `seg-vert_dseg.tsv` the label values of the `seg-spine` and `seg-vert` masks.\n",
        )


def retire_case(root: Path, old_manifest: str | None, trash: Path) -> Path | None:
    """Move an older copy's files into the trash (a failed re-run must not leave stale results); returns the
    folder to delete once the database holds the failure."""
    old = read_json(root / old_manifest) if old_manifest else None
    if old is None or old_manifest is None:
        return None
    keep = trash / uuid.uuid4().hex
    keep.mkdir(parents=True)
    old_dir = (root / old_manifest).parent
    for name in case_files(old):
        if (old_dir / name).exists():
            os.rename(old_dir / name, keep / name)
    return keep
