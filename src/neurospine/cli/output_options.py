"""``--output-format`` (NIfTI / DICOM-SEG) and ``--qc DIR`` for the commands that write label masks.

Per command: ``add_arguments`` when registering; ``check`` on every input before any inference (a DICOM-SEG
request on a non-DICOM input is refused up front, exit 2); ``expected`` adds the ``.dcm`` files to the
outputs a run may write; ``export`` on each ``TaskResult`` inside the run (the SEGs land in the same staging
folder as the masks); ``record_qc`` on the finished results.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: same values as ``neurospine.io.dicomseg.OUTPUT_FORMATS`` (not imported: ``--help`` stays light)
OUTPUT_FORMATS = ("nifti", "dicom-seg", "both")


def add_arguments(p: Any, masks: str, *, qc: bool = True) -> None:
    """``masks``: what becomes DICOM-SEG (documented in the command's docs page; the help stays one line each).
    ``qc=False`` leaves out ``--qc`` (a command whose help has no room left)."""
    p.add_argument(
        "--output-format",
        choices=OUTPUT_FORMATS,
        default="nifti",
        metavar="FMT",
        help=f"{masks}: nifti (default), dicom-seg (DICOM series input) or both",
    )
    if qc:
        p.add_argument("--qc", metavar="DIR", help="also add the runs to the QC page DIR/qc_report.html")


def check(args: Any, images: Sequence[str | Path]) -> None:
    """Refuse a DICOM-SEG request whose inputs are not DICOM series folders (before any inference)."""
    from neurospine.io.dicomseg import check_dicom_source

    for image in images:
        check_dicom_source(image, getattr(args, "output_format", "nifti"))


def seg_paths(paths: Sequence[Path], output_format: str) -> list[Path]:
    """The ``.dcm`` files ``export`` adds beside these NIfTI masks."""
    from neurospine.io.dicomseg import seg_path_for

    if output_format == "nifti":
        return []
    return [seg_path_for(p) for p in paths if str(p).endswith((".nii.gz", ".nii")) and "_msk" in Path(p).name]


def expected(args: Any, paths: Sequence[Path]) -> list[Path]:
    """A run's possible outputs: the pipeline's own plus the DICOM-SEGs asked for."""
    return [*paths, *seg_paths(paths, getattr(args, "output_format", "nifti"))]


def export(result: Any, args: Any) -> Any:
    """Write the DICOM-SEGs asked for beside the result's masks (``dicom-seg``: in place of them)."""
    from neurospine.io.dicomseg import export_result

    return export_result(result, getattr(args, "output_format", "nifti"))


def record_qc(results: Sequence[Any], args: Any) -> Path | None:
    """Add the finished runs to ``--qc DIR``'s page; its path (None without ``--qc`` or results)."""
    qc_dir = getattr(args, "qc", None)
    if not qc_dir or not results:
        return None
    from neurospine.batch.report import record_single_run, write_single_run_report

    for result in results:
        record_single_run(result, qc_dir, rebuild=False)
    return write_single_run_report(qc_dir)  # one page rebuild for all the runs of this command
