"""Modality of 2D images without metadata: radiograph vs MR slice from size and intensity signs."""

from __future__ import annotations

import numpy as np
import pytest

from neurospine.slice2d.modality import guess_modality, image_signs


def _radiograph(shape: tuple[int, int]) -> np.ndarray:
    """Superimposed tissue filling the middle grey levels, with short bright bone pieces."""
    rng = np.random.default_rng(0)
    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    img = 90 + 60 * np.sin(rr / shape[0] * 3) + 40 * (cc / shape[1]) + rng.normal(0, 4, shape)
    h = shape[0] // 12
    for k in range(8):  # vertebral bodies: brighter, each short
        r0 = h + k * int(1.3 * h)
        img[r0 : r0 + h, shape[1] // 3 : shape[1] // 2] += 60
    return np.clip(img, 0, 255).astype(np.float32)


def _mr_slice(shape: tuple[int, int] = (256, 256)) -> np.ndarray:
    """Dark background and bone, grey tissue, a thin bright CSF column over most of the height."""
    rng = np.random.default_rng(1)
    img = rng.normal(8, 3, shape)
    img[:, shape[1] // 4 : 3 * shape[1] // 4] += 50
    img[int(0.05 * shape[0]) : int(0.95 * shape[0]), shape[1] // 2 : shape[1] // 2 + max(3, shape[1] // 40)] = 240
    return np.clip(img, 0, 255).astype(np.float32)


def test_large_radiograph_is_xray_certain() -> None:
    g = guess_modality(_radiograph((1400, 900)), is_volume=False)
    assert (g.modality, g.certain) == ("xray", True) and "radiograph-sized" in g.how


def test_small_mr_slice_is_mr_certain() -> None:
    a = _mr_slice()
    s = image_signs(a)
    assert s.skewness >= 1.0 and s.bright_column_fraction >= 0.8
    g = guess_modality(a, is_volume=False, spacing_mm=(1.0, 1.0))
    assert (g.modality, g.certain) == ("mr", True)


def test_mr_without_dark_background_still_mr_by_its_csf_column() -> None:
    a = _mr_slice()
    tissue = np.linspace(20.0, 180.0, a.shape[1], dtype=np.float32)[None, :]
    a = np.where(a < 200, np.broadcast_to(tissue, a.shape), a)  # grey levels fill the range: not skewed
    assert image_signs(a).skewness < 1.0
    assert guess_modality(a, is_volume=False).modality == "mr"


def test_small_image_without_mr_signs_is_uncertain() -> None:
    small = _radiograph((1400, 900))[::5, ::5]  # a downsized radiograph (280 x 180)
    g = guess_modality(small, is_volume=False)
    assert g.modality == "xray" and not g.certain and "look alike" in g.how


def test_radiograph_sized_mr_is_flagged_uncertain() -> None:
    big = np.kron(_mr_slice(), np.ones((4, 4), np.float32))  # an MR slice interpolated to 1024 px
    g = guess_modality(big, is_volume=False)
    assert g.modality == "mr" and not g.certain


def test_fine_known_pixels_count_as_radiograph_sized() -> None:
    a = _radiograph((600, 400))
    assert "slice-sized" in guess_modality(a, is_volume=False, spacing_mm=(0.5, 0.5)).how
    g = guess_modality(a, is_volume=False, spacing_mm=(0.15, 0.15))
    assert g.modality == "xray" and g.certain and "radiograph-sized" in g.how


def test_override_and_metadata_win() -> None:
    a = _mr_slice()
    assert guess_modality(a, is_volume=False, override="xray").modality == "xray"
    assert guess_modality(a, is_volume=False, dicom_modality="CR").modality == "xray"
    assert guess_modality(_radiograph((1400, 900)), is_volume=False, dicom_modality="MR").modality == "mr"


@pytest.mark.parametrize(
    ("folder", "name", "expected"),
    [
        ("vesal_mri2d", "vesal-15", "mr"),
        ("vesal_mri2d", "vesal-00", "mr"),
        ("spineproject_xray", "xr-normal-lat", "xray"),
        ("spineproject_xray", "xr-damaged-ap", "xray"),
    ],
)
def test_real_2d_files(shared_data, folder: str, name: str, expected: str) -> None:
    from neurospine.slice2d.api import input_modality
    from neurospine.slice2d.io2d import load_input

    f = shared_data / folder / f"{name}_img.nii.gz"
    if not f.exists():
        pytest.skip(f"{name} not staged")
    g = input_modality(load_input(f))
    assert g.modality == expected and g.certain


def test_real_mid_sagittal_mr_slice(shared_data) -> None:
    f = shared_data / "fcs_vb3_myosegmentum_lumbar" / "vb3-27_img.nii.gz"
    if not f.exists():
        pytest.skip("vb3-27 not staged")
    from neurospine.slice2d.io2d import load_input

    loaded = load_input(f)
    plane = loaded.slice_plane(loaded.n_slices() // 2)
    assert guess_modality(plane.pixels, is_volume=False, spacing_mm=plane.spacing_mm).modality == "mr"
