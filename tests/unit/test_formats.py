"""NRRD/MHA and DICOM series land on the same world grid as the equivalent NIfTI."""

import numpy as np
import pytest

from neurospine.errors import InputError
from neurospine.io import Volume, load_volume, save_volume

sitk = pytest.importorskip("SimpleITK")


def _sitk_image(arr_xyz: np.ndarray, spacing, origin_lps, direction_lps) -> "sitk.Image":
    img = sitk.GetImageFromArray(np.transpose(arr_xyz, (2, 1, 0)))
    img.SetSpacing(spacing)
    img.SetOrigin(origin_lps)
    img.SetDirection(direction_lps)
    return img


@pytest.mark.parametrize("suffix", [".mha", ".nrrd"])
def test_itk_formats_match_nifti_world_coordinates(tmp_path, suffix):
    rng = np.random.default_rng(0)
    arr = rng.integers(1, 1000, size=(6, 7, 8)).astype(np.int16)
    direction = (0.0, 0.0, -1.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0)  # an arbitrary LPS rotation
    img = _sitk_image(arr, (0.5, 0.7, 3.0), (10.0, -20.0, 30.0), direction)
    path = tmp_path / f"img{suffix}"
    sitk.WriteImage(img, str(path))
    vol = load_volume(path)
    np.testing.assert_array_equal(vol.data, arr)
    # voxel (i, j, k) must sit where ITK says, converted LPS -> RAS
    for ijk in [(0, 0, 0), (5, 6, 7), (2, 3, 1)]:
        lps = np.array(img.TransformIndexToPhysicalPoint(tuple(int(v) for v in ijk)))
        ras = lps * np.array([-1, -1, 1])
        np.testing.assert_allclose(vol.world_coords(ijk)[0], ras, atol=1e-6)
    # and survives a NIfTI round trip
    save_volume(vol, tmp_path / "img.nii.gz")
    again = load_volume(tmp_path / "img.nii.gz")
    assert again.same_grid(vol)


def test_dicom_series_folder(tmp_path):
    arr = (np.arange(4 * 5 * 6).reshape(4, 5, 6) % 97 + 1).astype(np.int16)
    folder = tmp_path / "dicom"
    folder.mkdir()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    series_uid = "1.2.826.0.1.3680043.2.1125.1.1234"
    for k in range(arr.shape[2]):
        sl = sitk.GetImageFromArray(arr[:, :, k].T[np.newaxis].astype(np.int16))
        sl.SetSpacing((0.8, 0.9, 2.5))
        sl.SetOrigin((0.0, 0.0, 2.5 * k))
        for tag, value in {
            "0020|000e": series_uid,
            "0020|000d": "1.2.826.0.1.3680043.2.1125.1.99",
            "0008|0060": "MR",
            "0020|0032": f"0\\0\\{2.5 * k}",
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0020|0013": str(k + 1),
            "0028|0030": "0.9\\0.8",
            "0018|0050": "2.5",
            "0008|0018": f"1.2.826.0.1.3680043.2.1125.1.{k + 500}",
        }.items():
            sl.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"s{k:03d}.dcm"))
        writer.Execute(sl)
    vol = load_volume(folder)
    assert vol.shape == (4, 5, 6)
    np.testing.assert_allclose(vol.spacing_mm, (0.8, 0.9, 2.5), atol=1e-4)
    np.testing.assert_array_equal(vol.data, arr)


def test_folder_without_dicom(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(InputError, match="no DICOM series"):
        load_volume(tmp_path)


def test_volume_rejects_bad_construction():
    with pytest.raises(InputError, match="3D"):
        Volume(np.zeros((3, 3)), np.eye(4))
    with pytest.raises(InputError, match="spacing"):
        Volume(np.zeros((3, 3, 3)), np.diag([1.0, 0.0, 1.0, 1.0]))
