"""Writing: exact grids, dtypes, atomicity (no partial output), and label-value safety."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from neurospine.errors import GeometryError, NeuroSpineError
from neurospine.io import Volume, atomic_path, load_volume, save_like, save_volume, write_text_atomic


def tilted_affine():
    t = np.deg2rad(23.0)
    aff = np.eye(4)
    c, s = np.cos(t) * 0.5, np.sin(t) * 0.5
    aff[:3, :3] = np.array([[0, 0, -4.0], [-c, s, 0], [-s, -c, 0]])
    aff[:3, 3] = (12.0, -30.0, 55.5)
    return aff


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32, np.float32, np.float64])
def test_round_trip_keeps_values_dtype_and_affine(tmp_path, dtype):
    data = (np.random.default_rng(1).random((9, 8, 7)) * 200 + 1).astype(dtype)
    vol = Volume(data, tilted_affine())
    path = save_volume(vol, tmp_path / "img.nii.gz")
    back = load_volume(path)
    assert back.data.dtype == dtype
    np.testing.assert_array_equal(back.data, data)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-5)  # float32 header precision
    img = nib.load(str(path))
    assert int(img.header["qform_code"]) == 1 and int(img.header["sform_code"]) == 1


def test_save_like_writes_on_the_input_grid(tmp_path):
    ref = Volume(np.random.default_rng(0).random((6, 7, 8)).astype(np.float32) + 1, tilted_affine())
    mask = np.zeros(ref.shape, np.int64)
    mask[1:3, 2:5, 3:7] = 200
    save_like(mask, ref, tmp_path / "mask.nii.gz")
    out = load_volume(tmp_path / "mask.nii.gz", check_intensity=False)
    assert out.same_grid(ref) and out.data.dtype == np.uint8
    np.testing.assert_array_equal(out.data, mask)
    assert nib.load(str(tmp_path / "mask.nii.gz")).header.get_intent()[0] == "label"
    with pytest.raises(GeometryError, match="differs from the input grid"):
        save_like(mask[:-1], ref, tmp_path / "bad.nii.gz")
    assert not (tmp_path / "bad.nii.gz").exists()


def test_save_like_keeps_labels_up_to_int16(tmp_path):
    ref = Volume(np.ones((4, 4, 4), np.float32), np.eye(4))
    lab = np.zeros((4, 4, 4), np.int32)
    lab[0, 0, 0], lab[1, 1, 1] = 300, 32767
    save_like(lab, ref, tmp_path / "m.nii.gz")
    np.testing.assert_array_equal(load_volume(tmp_path / "m.nii.gz", check_intensity=False).data, lab)


def test_save_like_never_changes_label_values(tmp_path):
    ref = Volume(np.ones((4, 4, 4), np.float32), np.eye(4))
    for value in (40000, -1):
        lab = np.zeros((4, 4, 4), np.int32)
        lab[0, 0, 0] = value
        try:
            save_like(lab, ref, tmp_path / "m.nii.gz")
        except NeuroSpineError:
            continue  # refusing is acceptable; changing the value is not
        np.testing.assert_array_equal(load_volume(tmp_path / "m.nii.gz", check_intensity=False).data, lab)


def test_save_volume_int64(tmp_path):
    lab = np.zeros((4, 4, 4), np.int64)
    lab[1, 1, 1] = 7
    try:
        save_volume(Volume(lab, np.eye(4)), tmp_path / "i64.nii.gz")
    except NeuroSpineError:
        return
    np.testing.assert_array_equal(load_volume(tmp_path / "i64.nii.gz", check_intensity=False).data, lab)


def test_bool_is_written_as_uint8(tmp_path):
    m = np.zeros((3, 4, 5), bool)
    m[1, 2, 3] = True
    save_volume(Volume(m, np.eye(4)), tmp_path / "b.nii.gz")
    back = load_volume(tmp_path / "b.nii.gz")
    assert back.data.dtype == np.uint8 and back.data.sum() == 1


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "sub" / "out.nii.gz"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash in the middle")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_atomic_overwrite_keeps_old_file_until_success(tmp_path):
    target = tmp_path / "table.csv"
    write_text_atomic(target, "old\n")
    with pytest.raises(ValueError), atomic_path(target) as tmp:
        tmp.write_text("new partial")
        raise ValueError("boom")
    assert target.read_text() == "old\n"
    write_text_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_temp_file_keeps_nifti_suffix(tmp_path):
    with atomic_path(tmp_path / "x.nii.gz") as tmp:
        assert tmp.name.endswith(".nii.gz") and tmp.parent == tmp_path
        nib.save(nib.Nifti1Image(np.ones((2, 2, 2), np.float32), np.eye(4)), str(tmp))
    with (tmp_path / "x.nii.gz").open("rb") as fh:
        assert fh.read(2) == b"\x1f\x8b"  # really gzip-compressed
