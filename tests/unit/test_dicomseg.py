"""DICOM-SEG output: geometry on an oblique series, references to the source series, coded segments, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurospine.errors import GeometryError, InputError
from neurospine.io import Volume, load_volume
from tests.dicom_series import oblique_affine, write_series

hd = pytest.importorskip("highdicom")
pydicom = pytest.importorskip("pydicom")

SHAPE = (20, 24, 7)


@pytest.fixture
def series(tmp_path: Path) -> tuple[Path, Volume, list[str]]:
    rng = np.random.default_rng(0)
    vol = Volume(rng.random(SHAPE).astype(np.float32) + 0.1, oblique_affine((0.9, 1.1, 3.3)))
    uids = write_series(vol, tmp_path / "series")
    return tmp_path / "series", vol, uids


def _labels() -> np.ndarray:
    lab = np.zeros(SHAPE, dtype=np.int16)
    lab[2:8, 3:9, 1:3] = 20  # L1
    lab[5:9, 10:12, 2:6] = 23  # L4
    lab[10:15, 5:20, 4] = 124  # disc below L5
    lab[1, 1, 6] = 221  # one endplate voxel in the last slice, at a corner
    lab[19, 23, 0] = 123  # the opposite corner of the first slice
    return lab


def test_loaded_series_has_the_written_oblique_geometry(series) -> None:
    folder, vol, _ = series
    loaded = load_volume(folder)
    assert loaded.shape == SHAPE
    np.testing.assert_allclose(loaded.affine, vol.affine, atol=1e-6)
    assert abs(loaded.affine[0, 2]) > 0.1 and abs(loaded.affine[1, 0]) > 0.1  # really oblique


def test_seg_round_trip_voxel_for_voxel_and_references_the_series(series, tmp_path: Path) -> None:
    from neurospine.io.dicomseg import read_dicom_seg, write_dicom_seg

    folder, _, uids = series
    vol = load_volume(folder)
    lab = _labels()
    path = write_dicom_seg(lab, vol, folder, tmp_path / "x_seg-vert_msk.dcm", kind="instance", description="t")
    np.testing.assert_array_equal(read_dicom_seg(path, vol), lab)

    seg = hd.seg.segread(str(path))
    src = pydicom.dcmread(next(folder.iterdir()))
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"  # Segmentation Storage
    assert seg.StudyInstanceUID == src.StudyInstanceUID and seg.FrameOfReferenceUID == src.FrameOfReferenceUID
    assert seg.PatientID == src.PatientID
    refs = seg.ReferencedSeriesSequence[0]
    assert refs.SeriesInstanceUID == src.SeriesInstanceUID
    assert {r.ReferencedSOPInstanceUID for r in refs.ReferencedInstanceSequence} == set(uids)
    # highdicom's own lookup by source instance gives each source slice's labels (independent of our reader)
    numbers = {n: int(seg.get_segment_description(n).TrackingID.split()[-1]) for n in seg.segment_numbers}
    px = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, combine_segments=True, relabel=False)
    values = np.vectorize(lambda n: numbers.get(int(n), 0))(px)
    np.testing.assert_array_equal(np.transpose(values, (2, 1, 0)), lab)


def test_segments_are_coded(series, tmp_path: Path) -> None:
    from neurospine.io.dicomseg import LOCAL_SCHEME, write_dicom_seg

    folder, _, _ = series
    vol = load_volume(folder)
    path = write_dicom_seg(_labels(), vol, folder, tmp_path / "s.dcm", kind="instance", description="t")
    seg = hd.seg.segread(str(path))
    got = {}
    for n in seg.segment_numbers:
        d = seg.get_segment_description(n)
        t = d.SegmentedPropertyTypeCodeSequence[0]
        got[str(d.SegmentLabel)] = (t.CodingSchemeDesignator, t.CodeValue, t.CodeMeaning)
        assert d.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "91723000"  # SCT Anatomical Structure
        assert d.SegmentAlgorithmType == "AUTOMATIC"
    assert got["L1"] == ("SCT", "66794005", "L1 vertebra")
    assert got["L4"] == ("SCT", "11994002", "L4 vertebra")
    assert got["disc_L4"] == ("SCT", "84020006", "L4/L5 disc")
    assert got["disc_L5"] == ("SCT", "715056000", "L5/S1 disc")  # no L6 in the mask: the disc below L5 is L5/S1
    assert got["endplate_L2"][0] == LOCAL_SCHEME
    assert list(seg.segment_numbers) == [1, 2, 3, 4, 5]


def test_semantic_codes_and_laterality() -> None:
    from neurospine.io.dicomseg import LOCAL_SCHEME, segment_info

    assert segment_info("semantic", 26).property_type.value == "54735007"  # sacrum
    assert segment_info("semantic", 60).property_type.value == "2748008"  # spinal cord
    assert segment_info("semantic", 61).property_type.value == "61853006"  # vertebral canal
    assert segment_info("semantic", 42).property_type.value == "55678000"  # spinous process
    left, right = segment_info("semantic", 45), segment_info("semantic", 46)
    assert left.property_type == right.property_type and left.property_type.value == "317665004"
    assert (left.laterality.meaning, right.laterality.meaning) == ("Left", "Right")
    assert segment_info("semantic", 49).property_type.scheme_designator == LOCAL_SCHEME
    assert segment_info("semantic", 100).property_type.scheme_designator == LOCAL_SCHEME
    # L5/L6 disc when the mask holds an L6; L6 itself has no standard code
    assert segment_info("instance", 124, {24, 25, 124}).property_type.scheme_designator == LOCAL_SCHEME
    assert segment_info("instance", 25).property_type.scheme_designator == LOCAL_SCHEME
    assert segment_info("instance", 119, {19, 20}).property_type.meaning == "T12/L1 disc"
    assert segment_info("instance", 26).property_type.meaning == "Sacrum"


def test_grid_mismatch_and_empty_mask_are_refused(series, tmp_path: Path) -> None:
    from neurospine.io.dicomseg import read_dicom_seg, write_dicom_seg

    folder, _, _ = series
    vol = load_volume(folder)
    offset = np.zeros((4, 4))
    offset[0, 3] = 0.5  # half a millimetre to the left
    moved = Volume(vol.data, vol.affine + offset)
    with pytest.raises(GeometryError, match="elsewhere"):
        write_dicom_seg(_labels(), moved, folder, tmp_path / "s.dcm", kind="instance", description="t")
    with pytest.raises(InputError, match="empty"):
        write_dicom_seg(np.zeros(SHAPE, np.int16), vol, folder, tmp_path / "e.dcm", kind="instance", description="t")
    assert not (tmp_path / "s.dcm").exists() and not (tmp_path / "e.dcm").exists()
    path = write_dicom_seg(_labels(), vol, folder, tmp_path / "ok.dcm", kind="instance", description="t")
    with pytest.raises(GeometryError):
        read_dicom_seg(path, moved)


def test_nifti_input_is_refused_before_any_work(tmp_path: Path) -> None:
    from neurospine.io.dicomseg import check_dicom_source

    check_dicom_source(tmp_path / "x.nii.gz", "nifti")  # nothing to check
    for fmt in ("dicom-seg", "both"):
        with pytest.raises(InputError, match="needs a DICOM series"):
            check_dicom_source(tmp_path / "x.nii.gz", fmt)
    with pytest.raises(InputError, match="single DICOM file is not supported"):
        check_dicom_source(tmp_path / "x.dcm", "both")


def test_export_result_for_cord_masks(series, tmp_path: Path) -> None:
    """The cord command's masks (binary cord and canal) become SEGs with the cord/canal codes; an empty one is
    kept as NIfTI with a warning."""
    from neurospine.io import save_like
    from neurospine.io.dicomseg import export_result, read_dicom_seg
    from neurospine.results import TaskResult

    folder, _, _ = series
    vol = load_volume(folder)
    cord = np.zeros(SHAPE, np.uint8)
    cord[8:11, 4:20, 2:5] = 1
    out = tmp_path / "out"
    paths = {
        "cord_mask": save_like(cord, vol, out / "s_seg-cord_msk.nii.gz"),
        "canal_mask": save_like(np.zeros(SHAPE, np.uint8), vol, out / "s_seg-canal_msk.nii.gz"),
    }
    res = export_result(TaskResult("cord", str(folder), dict(paths), models={"cord_softseg": "1.0"}), "dicom-seg")
    assert set(res.outputs) == {"cord_mask_dicomseg", "canal_mask"}
    assert not paths["cord_mask"].exists() and paths["canal_mask"].exists()
    assert any("canal_mask: the mask is empty" in w for w in res.warnings)
    np.testing.assert_array_equal(read_dicom_seg(res.outputs["cord_mask_dicomseg"], vol), cord)
    seg = hd.seg.segread(str(res.outputs["cord_mask_dicomseg"]))
    d = seg.get_segment_description(1)
    assert d.SegmentLabel == "spinal_cord" and d.SegmentedPropertyTypeCodeSequence[0].CodeValue == "2748008"
    assert "cord_softseg 1.0" in seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0].AlgorithmVersion


def test_seg_paths_for_expected_outputs() -> None:
    from neurospine.cli.output_options import seg_paths

    masks = [Path("o/a_seg-spine_msk.nii.gz"), Path("o/a_seg-cord_soft.nii.gz"), Path("o/a_spine.csv")]
    assert seg_paths(masks, "both") == [Path("o/a_seg-spine_msk.dcm")]
    assert seg_paths(masks, "nifti") == []
