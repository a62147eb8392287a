"""DICOM Segmentation (DICOM-SEG) output: a label mask as a SEG object that references its source series.

One segment per label value present in the mask, numbered 1..N in label order, each with a coded
description: the SNOMED-CT concept from pydicom's bundled code tables where one exists (levels C1-L5,
discs C2/C3-L5/S1, sacrum, coccyx, posterior elements, spinal cord, vertebral canal), otherwise a code of
neurospine's private scheme ``99NSPINE`` (vertebral body, endplate, a disc or vertebra without a standard
level code such as L6 or T13). The segment label always carries the exact neurospine name (``L4``,
``disc_L4``, ``spinal_cord``), the tracking ID the label value of the NIfTI mask (``seg-vert 20``).

Only a DICOM series folder can be referenced: a SEG made from a NIfTI input would point at images no
PACS holds, so it is refused up front (``check_dicom_source``). See docs/decisions/dicom-seg-output.md.

Geometry: slice ``k`` of the loaded volume comes from the ``k``-th file of ``io.load.dicom_series_files``;
the writer re-derives the volume's affine from the DICOM headers in that order and refuses to write when
they disagree by more than ``GEOMETRY_TOLERANCE_MM``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from neurospine.errors import GeometryError, InputError
from neurospine.io.volume import Volume

if TYPE_CHECKING:
    from neurospine.results import TaskResult

log = logging.getLogger(__name__)

#: ``--output-format`` choices of the commands that write label masks.
OUTPUT_FORMATS = ("nifti", "dicom-seg", "both")
#: Coding scheme designator of the codes neurospine defines where SNOMED-CT (as bundled) has none.
LOCAL_SCHEME = "99NSPINE"
GEOMETRY_TOLERANCE_MM = 1e-3
SEG_SUFFIX = ".dcm"
#: label kinds: how the values of a mask are named and coded
KINDS = ("semantic", "instance", "cord", "canal", "slice2d", "slice2d-positional")
#: task -> {output key of its label mask: label kind}; the masks ``export_result`` turns into DICOM-SEG
TASK_MASKS: dict[str, dict[str, str]] = {
    "spine": {"semantic": "semantic", "instances": "instance"},
    "cord": {"cord_mask": "cord", "canal_mask": "canal"},
    "slice2d": {"mask": "slice2d"},  # "slice2d-positional" when the levels were not anchored
}

_LOCAL_CODES: dict[str, tuple[str, str]] = {
    "vertebral_body": ("NSP-VB", "Vertebral body"),
    "endplate": ("NSP-EP", "Vertebral endplate"),
    "disc": ("NSP-IVD", "Intervertebral disc"),
    "vertebra": ("NSP-VERT", "Vertebra (level without a standard code)"),
}

#: semantic (seg-spine) value -> (pydicom codes.SCT attribute or local key, laterality or None)
_SEMANTIC_CODES: dict[int, tuple[str, str | None]] = {
    26: ("Sacrum", None),
    41: ("ArchOfVertebra", None),
    42: ("SpinousProcessOfVertebra", None),
    43: ("TransverseProcessOrVertebra", "Left"),
    44: ("TransverseProcessOrVertebra", "Right"),
    45: ("SuperiorArticularProcessOfVertebra", "Left"),
    46: ("SuperiorArticularProcessOfVertebra", "Right"),
    47: ("InferiorArticularProcessOfVertebra", "Left"),
    48: ("InferiorArticularProcessOfVertebra", "Right"),
    49: ("vertebral_body", None),
    50: ("vertebral_body", None),
    52: ("endplate", None),
    53: ("endplate", None),
    60: ("SpinalCord", None),
    61: ("VertebralCanal", None),
    62: ("endplate", None),
    100: ("disc", None),
}


@dataclass(frozen=True)
class SegmentInfo:
    """How one label value is described in the SEG."""

    value: int
    label: str
    category: Any  # pydicom Code
    property_type: Any  # pydicom Code
    laterality: Any | None
    rgb: tuple[int, int, int]
    region: Any | None = None  # anatomic region (the vertebra a slice2d body belongs to)

    @property
    def standard(self) -> bool:
        """True when the property type is a SNOMED-CT code (not neurospine's local one)."""
        return str(self.property_type.scheme_designator) == "SCT"


def _code(key: str) -> Any:
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    if key in _LOCAL_CODES:
        value, meaning = _LOCAL_CODES[key]
        return Code(value, LOCAL_SCHEME, meaning)
    return getattr(codes.SCT, key)


def _disc_code_name(upper: int, present: set[int]) -> str | None:
    """pydicom's name of the disc below vertebra ``upper`` (``L4L5Disc``), or None without a standard code."""
    from neurospine.labels import VERTEBRA_NAMES, next_caudal

    lower = next_caudal(upper)
    # the usual neighbour unless the mask holds the transitional vertebra (T13 after T12, L6 after L5)
    while lower in (25, 28) and lower not in present:
        lower = next_caudal(lower)
    if lower is None or upper not in VERTEBRA_NAMES:
        return None
    a, b = VERTEBRA_NAMES[upper], VERTEBRA_NAMES[lower]
    if a in ("L6", "T13") or b in ("L6", "T13", "Cocc"):
        return None
    return f"{a}{b}Disc"


def segment_info(kind: str, value: int, present: set[int] | None = None) -> SegmentInfo:
    """Label, codes and colour of ``value`` in a mask of ``kind`` (``semantic``, ``instance`` or ``cord``)."""
    from pydicom.sr.codedict import codes

    from neurospine import labels as L

    present = present or set()
    category = codes.SCT.AnatomicalStructure
    side = None
    if kind == "semantic":
        if value not in _SEMANTIC_CODES:
            raise GeometryError(None, f"semantic label {value} has no DICOM-SEG description", "internal error")
        key, side = _SEMANTIC_CODES[value]
        info = L.semantic_info(value)
        label, rgb, ptype = info.name, info.rgb, _code(key)
    elif kind == "cord":
        label, rgb, ptype = "spinal_cord", L.semantic_info(60).rgb, _code("SpinalCord")
    elif kind == "canal":
        label, rgb, ptype = "spinal_canal", L.semantic_info(61).rgb, _code("VertebralCanal")
    elif kind == "instance":
        label = L.instance_name(value)
        rgb = next((r.rgb for r in L.all_label_rows("instance") if r.value == value), (200, 200, 200))
        if value < L.DISC_OFFSET:
            name = L.VERTEBRA_NAMES[value]
            if value == 26 or name.startswith("S"):
                ptype = _code("Sacrum")
            elif name == "Cocc":
                ptype = _code("Coccyx")
            elif name in ("L6", "T13"):
                ptype = _code("vertebra")
            else:
                ptype = _code(f"{name}Vertebra")
        elif value < L.ENDPLATE_OFFSET:
            disc = _disc_code_name(value - L.DISC_OFFSET, present)
            ptype = _code(disc) if disc else _code("disc")
        else:
            ptype = _code("endplate")
    elif kind in ("slice2d", "slice2d-positional"):
        # 2D bodies (not whole vertebrae) and discs; positional ids 1..N are not levels and get no level code
        anchored = kind == "slice2d"
        is_disc = value > L.DISC_OFFSET
        level = value - L.DISC_OFFSET if is_disc else value
        rgb = (80, 230, 120) if is_disc else L.semantic_info(50).rgb
        region = None
        if is_disc:
            disc = _disc_code_name(level, present) if anchored else None
            ptype = _code(disc) if disc else _code("disc")
            label = f"disc_{L.VERTEBRA_NAMES[level]}" if anchored and level in L.VERTEBRA_NAMES else f"disc{level}"
        else:
            ptype = _code("vertebral_body")
            level_name = L.VERTEBRA_NAMES.get(level) if anchored else None
            label = f"{level_name}_body" if level_name else f"body{level}"
            if level_name and not level_name.startswith("S") and level_name not in ("L6", "T13", "Cocc"):
                region = _code(f"{level_name}Vertebra")
        return SegmentInfo(int(value), label, category, ptype, None, rgb, region)
    else:
        raise ValueError(f"unknown label kind {kind!r}; use one of {KINDS}")
    laterality = getattr(codes.SCT, side) if side else None
    return SegmentInfo(int(value), label, category, ptype, laterality, rgb)


def is_dicom_series(path: str | Path) -> bool:
    return Path(path).is_dir()


def check_dicom_source(path: str | Path, output_format: str) -> None:
    """Refuse (before any inference) a DICOM-SEG request whose input is not a DICOM series folder."""
    if output_format not in OUTPUT_FORMATS:
        raise InputError(None, f"unknown --output-format {output_format!r}", f"use one of {', '.join(OUTPUT_FORMATS)}")
    if output_format == "nifti":
        return
    if not is_dicom_series(path):
        if str(path).lower().endswith((".dcm", ".dicom", ".ima")):
            problem = (
                "--output-format dicom-seg needs the folder of a DICOM series; a single DICOM file is not supported"
            )
        else:
            problem = (
                "--output-format dicom-seg needs a DICOM series as input: a SEG references the images it segments, "
                "and this input has none a PACS could hold"
            )
        raise InputError(
            path, problem, "give the DICOM series folder the image came from, or use --output-format nifti"
        )
    try:
        import highdicom  # noqa: F401
    except ImportError as e:  # pragma: no cover - highdicom is a dependency
        raise InputError(None, "highdicom is not installed", "pip install highdicom") from e


def _read_headers(files: Sequence[str]) -> list[Any]:
    import pydicom

    datasets = []
    for f in files:
        try:
            datasets.append(pydicom.dcmread(f))
        except Exception as e:  # pydicom raises many kinds for broken files
            raise InputError(f, f"cannot read the DICOM file ({e})", "check the series files") from e
    return datasets


def _series_affine(datasets: Sequence[Any]) -> npt.NDArray[np.float64]:
    """Voxel (column, row, slice) -> RAS mm from the headers, slices in list order."""
    first, last = datasets[0], datasets[-1]
    iop = np.array([float(v) for v in first.ImageOrientationPatient])
    row_dir, col_dir = iop[:3], iop[3:]
    dr, dc = (float(v) for v in first.PixelSpacing)  # (between rows, between columns)
    p0 = np.array([float(v) for v in first.ImagePositionPatient])
    p1 = np.array([float(v) for v in last.ImagePositionPatient])
    step = (p1 - p0) / max(1, len(datasets) - 1)
    lps = np.eye(4)
    lps[:3, 0] = row_dir * dc
    lps[:3, 1] = col_dir * dr
    lps[:3, 2] = step
    lps[:3, 3] = p0
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def source_series(folder: str | Path, volume: Volume) -> list[Any]:
    """The series' pydicom datasets in the volume's slice order, after checking they give its exact grid."""
    from neurospine.io.load import dicom_series_files

    datasets = _read_headers(dicom_series_files(Path(folder)))
    nx, ny, nz = volume.shape
    if len(datasets) != nz or any((int(d.Columns), int(d.Rows)) != (nx, ny) for d in datasets):
        raise GeometryError(
            folder,
            f"the DICOM series ({len(datasets)} slices) does not match the image grid {volume.shape}",
            "give the same series folder the masks were computed from",
        )
    affine = _series_affine(datasets)
    if not np.allclose(affine, volume.affine, atol=GEOMETRY_TOLERANCE_MM):
        raise GeometryError(
            folder,
            "the DICOM headers place the slices elsewhere than the loaded image (unevenly spaced or tilted series?)",
            "resample the series to a regular grid, or use --output-format nifti",
        )
    return datasets


def _frames(labels: npt.NDArray[np.integer[Any]]) -> npt.NDArray[np.integer[Any]]:
    """``labels[i, j, k]`` (column, row, slice) -> frames ``[k, j, i]`` (slice, row, column)."""
    return np.ascontiguousarray(np.transpose(labels, (2, 1, 0)))


def write_dicom_seg(
    labels: npt.NDArray[np.integer[Any]],
    volume: Volume,
    source: str | Path | Sequence[Any],
    path: str | Path,
    *,
    kind: str,
    description: str,
    algorithm: str = "neurospine",
    algorithm_version: str = "",
    series_number: int = 300,
) -> Path:
    """Write ``labels`` (on ``volume``'s grid) as a binary DICOM-SEG referencing the series in ``source``.

    ``source`` is the DICOM series folder, or its datasets from ``source_series``. An all-zero mask is
    refused (a SEG must hold at least one segment)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from neurospine import __version__
    from neurospine.io.save import atomic_path

    if tuple(labels.shape) != volume.shape:
        raise GeometryError(path, f"mask shape {labels.shape} differs from the image grid {volume.shape}", "internal")
    datasets = source_series(source, volume) if isinstance(source, str | Path) else list(source)
    values = [int(v) for v in np.unique(labels) if v != 0]
    if not values:
        raise InputError(path, "the mask is empty: a DICOM-SEG needs at least one segment", "check the input image")
    present = set(values)
    algo = hd.AlgorithmIdentificationSequence(
        name=algorithm[:64],
        family=codes.cid7162.ArtificialIntelligence,
        version=(algorithm_version or __version__)[:64],
    )
    descriptions = []
    for number, value in enumerate(values, start=1):
        info = segment_info(kind, value, present)
        desc = hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=info.label[:64],
            segmented_property_category=info.category,
            segmented_property_type=info.property_type,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algo,
            tracking_id=f"{kind} {value}",
            tracking_uid=hd.UID(),
            display_color=hd.color.CIELabColor.from_rgb(*info.rgb),
            anatomic_regions=None if info.region is None else [info.region],
        )
        if info.laterality is not None:
            desc.SegmentedPropertyTypeModifierCodeSequence = [hd.sr.CodedConcept.from_code(info.laterality)]
        descriptions.append(desc)
    lut = np.zeros(max(values) + 1, dtype=np.uint16)
    lut[values] = np.arange(1, len(values) + 1, dtype=np.uint16)
    numbered = lut[np.asarray(labels, dtype=np.int64)]
    seg = hd.seg.Segmentation(
        source_images=datasets,
        pixel_array=_frames(numbered),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="neurospine",
        manufacturer_model_name=algorithm[:64],
        software_versions=__version__,
        device_serial_number="0",
        content_description=description[:64],
        content_label=re.sub(r"[^A-Z0-9_ ]", "_", kind.upper())[:16],
        series_description=description[:64],
    )
    with atomic_path(path) as tmp:
        seg.save_as(tmp)
    log.info("wrote DICOM-SEG %s (%d segments)", path, len(values))
    return Path(path)


def read_dicom_seg(path: str | Path, volume: Volume) -> npt.NDArray[np.int64]:
    """Label map on ``volume``'s grid from a SEG written by ``write_dicom_seg`` (values from the tracking IDs).

    Every frame is placed by its own plane position and the shared orientation and pixel spacing, so a SEG
    on another grid is refused rather than silently misread."""
    import highdicom as hd

    seg = hd.seg.segread(str(path))
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ volume.affine
    shared = seg.SharedFunctionalGroupsSequence[0]
    iop = np.array([float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient])
    dr, dc = (float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing)
    if not (
        np.allclose(iop[:3] * dc, lps[:3, 0], atol=GEOMETRY_TOLERANCE_MM)
        and np.allclose(iop[3:] * dr, lps[:3, 1], atol=GEOMETRY_TOLERANCE_MM)
    ):
        raise GeometryError(path, "the DICOM-SEG's orientation or pixel spacing differs from the image", "internal")
    values = {int(n): int(str(seg.get_segment_description(n).TrackingID).split()[-1]) for n in seg.segment_numbers}
    inverse = np.linalg.inv(lps)
    pixels = seg.pixel_array
    if pixels.ndim == 2:
        pixels = pixels[None]
    out = np.zeros(volume.shape, dtype=np.int64)
    for f, item in enumerate(seg.PerFrameFunctionalGroupsSequence):
        ipp = np.array([float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient] + [1.0])
        ijk = inverse @ ipp
        k = round(float(ijk[2]))
        if not np.allclose(ijk[:3], (0.0, 0.0, k), atol=1e-3) or not 0 <= k < volume.shape[2]:
            raise GeometryError(path, f"frame {f + 1} lies off the image's slices (voxel {ijk[:3]})", "internal")
        ident = item if "SegmentIdentificationSequence" in item else shared  # one segment: shared by all frames
        number = int(ident.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        out[:, :, k][np.asarray(pixels[f]).T > 0] = values[number]
    return out


def seg_path_for(nifti_path: str | Path) -> Path:
    """``x_seg-spine_msk.nii.gz`` -> ``x_seg-spine_msk.dcm`` (same folder)."""
    from neurospine.io.volume import stem_of

    p = Path(nifti_path)
    return p.with_name(stem_of(p) + SEG_SUFFIX)


def export_result(result: TaskResult, output_format: str) -> TaskResult:
    """Add a DICOM-SEG beside each label mask of ``result`` (``both``) or replace the NIfTI mask by it (``dicom-seg``).

    The masks are read back from the NIfTI files the pipeline wrote, so SEG and NIfTI hold the same voxels.
    An empty mask keeps its NIfTI file and gets a warning (a SEG needs at least one segment)."""
    import dataclasses

    from neurospine.io.load import load_volume

    if output_format == "nifti":
        return result
    check_dicom_source(result.input_path, output_format)
    masks = TASK_MASKS.get(result.task, {})
    vol = load_volume(result.input_path)
    datasets = source_series(result.input_path, vol)
    outputs = dict(result.outputs)
    warnings = list(result.warnings)
    version = ", ".join(f"{k} {v}" for k, v in sorted(result.models.items()))
    for key, kind in masks.items():
        if kind == "slice2d" and result.measures.get("naming") != "anchored":
            kind = "slice2d-positional"
        nii = outputs.get(key)
        if nii is None:
            continue
        mask = load_volume(nii, check_intensity=False)
        if not mask.same_grid(vol):
            raise GeometryError(nii, "the mask is not on the input's grid", "internal error: report it")
        labels = np.asarray(mask.data).astype(np.int64)
        if not labels.any():
            warnings.append(f"{key}: the mask is empty, no DICOM-SEG written (the NIfTI mask is kept)")
            continue
        target = write_dicom_seg(
            labels,
            vol,
            datasets,
            seg_path_for(nii),
            kind=kind,
            description=f"neurospine {result.task} {kind}",
            algorithm=f"neurospine {result.task}",
            algorithm_version=version,
        )
        outputs[f"{key}_dicomseg"] = target
        if output_format == "dicom-seg":
            Path(nii).unlink()
            outputs.pop(key)
    return dataclasses.replace(result, outputs=outputs, warnings=warnings)
