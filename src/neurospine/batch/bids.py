"""Find the scans of a cohort: a BIDS dataset, a folder of images or a glob pattern.

BIDS: ``sub-*/[ses-*/]anat/*.nii[.gz]``; entities (``sub``, ``ses``, ``acq``, ``run`` ...) and the
suffix (``T2w``) are parsed from the file name. Anything else: every image under the folder (or
matching the glob), each file its own subject, named after its sanitised file stem.
"""

from __future__ import annotations

import glob
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from neurospine.errors import InputError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
#: BIDS entities in their canonical file-name order (the ones that occur in anat/).
ENTITY_ORDER = ("sub", "ses", "task", "acq", "ce", "rec", "run", "echo", "part", "chunk")
_ENTITY_RE = re.compile(r"^([a-zA-Z]+)-([a-zA-Z0-9]+)$")
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Scan:
    """One input image and where its outputs go inside the derivatives tree."""

    path: Path
    subject: str
    session: str | None = None
    suffix: str | None = None
    entities: dict[str, str] = field(default_factory=dict)
    dataset_root: Path | None = None

    @property
    def stem(self) -> str:
        return image_stem(self.path)

    @property
    def rel_dir(self) -> Path:
        """Folder of this scan's outputs relative to the derivatives root: ``sub-X/[ses-Y/]anat/<stem>``."""
        base = Path(f"sub-{self.subject}")
        if self.session:
            base = base / f"ses-{self.session}"
        return base / "anat" / self.stem

    @property
    def rel_input(self) -> str:
        """Input path relative to the dataset root when inside it, else absolute."""
        if self.dataset_root is not None:
            try:
                return self.path.relative_to(self.dataset_root).as_posix()
            except ValueError:
                pass
        return self.path.as_posix()


def image_stem(path: Path) -> str:
    name = path.name
    for suf in IMAGE_SUFFIXES:
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return path.stem


def parse_bids_name(name: str) -> tuple[dict[str, str], str | None]:
    """``sub-01_ses-2_acq-sag_T2w.nii.gz`` -> ({sub: 01, ses: 2, acq: sag}, "T2w").

    Parts that are not ``key-value`` pairs are ignored except the last, which is the suffix.
    """
    stem = image_stem(Path(name))
    parts = stem.split("_")
    entities: dict[str, str] = {}
    suffix: str | None = None
    for i, part in enumerate(parts):
        m = _ENTITY_RE.match(part)
        if m:
            entities.setdefault(m.group(1), m.group(2))
        elif i == len(parts) - 1 and i > 0 and part.isalnum():
            suffix = part
    return entities, suffix


def _sanitise_label(text: str) -> str:
    label = re.sub(r"[^a-zA-Z0-9]", "", text)
    return label or "unnamed"


def _is_image(p: Path) -> bool:
    return p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES) and not p.name.startswith(".")


def _skip_dir(parts: Iterable[str]) -> bool:
    return any(part == "derivatives" or part.startswith(".") or part == "sourcedata" for part in parts)


def is_bids_dataset(root: Path) -> bool:
    return root.is_dir() and any(p.is_dir() for p in root.glob("sub-*"))


def _bids_scans(root: Path) -> list[Scan]:
    files = sorted(set(root.glob("sub-*/anat/*")) | set(root.glob("sub-*/ses-*/anat/*")))
    scans = []
    for p in files:
        if not _is_image(p):
            continue
        entities, suffix = parse_bids_name(p.name)
        sub_dir = p.relative_to(root).parts[0][len("sub-") :]
        ses_dir = p.parent.parent.name[len("ses-") :] if p.parent.parent.name.startswith("ses-") else None
        if entities.get("sub") not in (None, sub_dir):
            log.warning(
                "%s: file name says sub-%s but the folder is sub-%s; using the folder", p, entities.get("sub"), sub_dir
            )
        entities["sub"] = sub_dir
        if ses_dir:
            entities["ses"] = ses_dir
        scans.append(Scan(p, sub_dir, ses_dir, suffix, entities, root))
    return scans


def _loose_scans(files: Sequence[Path], root: Path | None) -> list[Scan]:
    scans: list[Scan] = []
    used: dict[tuple[str, str | None, str], Path] = {}
    for p in files:
        entities, suffix = parse_bids_name(p.name)
        if "sub" in entities:
            subject, session = entities["sub"], entities.get("ses")
        else:
            subject, session = _sanitise_label(image_stem(p)), None
            entities = {"sub": subject}
        key = (subject, session, image_stem(p))
        if key in used:
            raise InputError(
                p,
                f"two inputs map to the same output folder sub-{subject}/{image_stem(p)} (the other is {used[key]})",
                "rename one of them or run the folders separately",
            )
        used[key] = p
        scans.append(Scan(p, subject, session, suffix, entities, root))
    return scans


def discover(
    dataset: str | Path,
    *,
    suffix: str | None = None,
    acq: str | None = None,
    subjects: Sequence[str] | None = None,
) -> list[Scan]:
    """Every scan of ``dataset`` (BIDS folder, plain folder, single image or glob), filtered.

    ``subjects`` accepts labels with or without the ``sub-`` prefix.
    """
    text = str(dataset)
    root = Path(text).expanduser()
    if root.is_dir():
        root = root.resolve()
        if is_bids_dataset(root):
            scans = _bids_scans(root)
        else:
            files = sorted(p for p in root.rglob("*") if _is_image(p) and not _skip_dir(p.relative_to(root).parts))
            scans = _loose_scans(files, root)
    elif root.is_file():
        if not _is_image(root):
            raise InputError(
                root, "not an image file", f"give a BIDS folder, a folder of images or files ending {IMAGE_SUFFIXES}"
            )
        scans = _loose_scans([root.resolve()], root.resolve().parent)
    elif _GLOB_CHARS & set(text):
        files = sorted(Path(p).resolve() for p in glob.glob(text, recursive=True) if _is_image(Path(p)))
        scans = _loose_scans(files, None)
    else:
        raise InputError(
            root, "dataset not found", "give a BIDS folder, a folder of images or a quoted glob like 'scans/*.nii.gz'"
        )

    wanted_subjects = None if not subjects else {s.removeprefix("sub-") for s in subjects}
    out = [
        s
        for s in scans
        if (suffix is None or s.suffix == suffix)
        and (acq is None or s.entities.get("acq") == acq)
        and (wanted_subjects is None or s.subject in wanted_subjects)
    ]
    log.info("found %d scans in %s (%d after filters)", len(scans), text, len(out))
    return out
