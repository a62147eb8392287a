"""Every bad input is an ``InputError`` naming the file, the problem and the fix, and the CLI turns it
into one line on stderr with exit code 2, no traceback and no output file.

Complements tests/cli/test_bad_input.py with the full matrix through ``neurospine evaluate``, ITK
formats, and cases found while writing these tests.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from neurospine.cli.main import main
from neurospine.errors import GeometryError, InputError
from neurospine.io import Volume, load_volume


def nifti(path: Path, data, affine=None) -> Path:
    img = nib.Nifti1Image(np.asarray(data), np.diag([0.5, 0.5, 4.0, 1.0]) if affine is None else affine)
    nib.save(img, str(path))
    return path


def with_header(path: Path, edit: Callable[[nib.Nifti1Header], None], compress: bool) -> Path:
    """Rewrite the 348-byte header of a valid uncompressed NIfTI ``path`` in place."""
    raw = bytearray(path.read_bytes())
    hdr = nib.Nifti1Header.from_fileobj(__import__("io").BytesIO(bytes(raw[:348])))
    edit(hdr)
    raw[:348] = hdr.binaryblock
    out = path.with_name(path.name + (".gz" if compress else ""))
    out.write_bytes(gzip.compress(bytes(raw)) if compress else bytes(raw))
    return out


def _random(shape, dtype=np.float32):
    return (np.random.default_rng(0).random(shape) * 100 + 1).astype(dtype)


def make_missing(d: Path) -> Path:
    return d / "missing.nii.gz"


def make_zero_bytes(d: Path) -> Path:
    p = d / "zero.nii.gz"
    p.write_bytes(b"")
    return p


def make_truncated_gzip(d: Path) -> Path:
    good = nifti(d / "full.nii.gz", _random((20, 20, 10)))
    p = d / "truncated.nii.gz"
    p.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    return p


def make_truncated_nii(d: Path) -> Path:
    good = nifti(d / "full.nii", _random((20, 20, 10)))
    p = d / "truncated.nii"
    p.write_bytes(good.read_bytes()[:2000])
    return p


def make_gz_not_gzip(d: Path) -> Path:
    p = d / "plain.nii.gz"
    p.write_bytes(b"\x00" * 600)
    return p


def make_text_as_nii(d: Path) -> Path:
    p = d / "notes.nii"
    p.write_text("subject,age\n01,34\n" * 40)
    return p


def make_png(d: Path) -> Path:
    p = d / "photo.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    return p


def make_2d(d: Path) -> Path:
    return nifti(d / "slice.nii.gz", _random((32, 32)))


def make_4d(d: Path) -> Path:
    return nifti(d / "fmri.nii.gz", _random((8, 8, 8, 5)))


def make_5d(d: Path) -> Path:
    return nifti(d / "five.nii.gz", _random((4, 4, 4, 2, 2)))


def make_constant(d: Path) -> Path:
    return nifti(d / "constant.nii.gz", np.full((8, 8, 8), 3.0, np.float32))


def make_all_zero(d: Path) -> Path:
    return nifti(d / "blank.nii.gz", np.zeros((8, 8, 8), np.int16))


def make_nan(d: Path) -> Path:
    data = _random((8, 8, 8))
    data[1, 2, 3] = np.nan
    return nifti(d / "nan.nii.gz", data)


def make_inf(d: Path) -> Path:
    data = _random((8, 8, 8))
    data[4, 4, 4] = -np.inf
    return nifti(d / "inf.nii.gz", data)


def make_absurd_dims(d: Path) -> Path:
    base = nifti(d / "base.nii", _random((8, 8, 8)))
    return with_header(base, lambda h: h.set_data_shape((32000, 32000, 32000)), compress=True)


def make_zero_spacing(d: Path) -> Path:
    base = nifti(d / "zsp.nii", _random((8, 8, 8)))

    def edit(h):
        h["pixdim"][3] = 0.0
        h["qform_code"] = 0
        h["sform_code"] = 0

    return with_header(base, edit, compress=True)


def make_degenerate_sform(d: Path) -> Path:
    aff = np.diag([0.5, 0.5, 4.0, 1.0])
    aff[:3, 2] = aff[:3, 0]  # third axis parallel to the first: zero volume
    return nifti(d / "flat.nii.gz", _random((8, 8, 8)), affine=aff)


def make_nan_affine(d: Path) -> Path:
    base = nifti(d / "nanaff.nii", _random((8, 8, 8)))

    def edit(h):
        h["srow_x"] = [np.nan, 0, 0, 0]
        h["sform_code"] = 1
        h["qform_code"] = 0

    return with_header(base, edit, compress=True)


def make_empty_dicom_folder(d: Path) -> Path:
    folder = d / "dicom"
    folder.mkdir()
    (folder / "readme.txt").write_text("no images")
    return folder


def make_mha_2d(d: Path) -> Path:
    sitk = pytest.importorskip("SimpleITK")
    p = d / "slice.mha"
    sitk.WriteImage(sitk.GetImageFromArray(_random((16, 16))), str(p))
    return p


def make_mha_vector(d: Path) -> Path:
    sitk = pytest.importorskip("SimpleITK")
    p = d / "rgb.mha"
    sitk.WriteImage(sitk.GetImageFromArray(_random((6, 6, 6, 3)).astype(np.uint8), isVector=True), str(p))
    return p


def make_mha_garbage(d: Path) -> Path:
    p = d / "garbage.mha"
    p.write_text(
        "ObjectType = Image\nNDims = 3\nDimSize = 10 10 10\nElementType = MET_FLOAT\nElementDataFile = nope.raw\n"
    )
    return p


CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing": (make_missing, "not found"),
    "zero_bytes": (make_zero_bytes, "empty"),
    "truncated_gzip": (make_truncated_gzip, "truncated or corrupt"),
    "truncated_nii": (make_truncated_nii, "truncated or corrupt"),
    "gz_not_gzip": (make_gz_not_gzip, "not gzip"),
    "text_as_nii": (make_text_as_nii, "NIfTI"),
    "png": (make_png, "unsupported file type"),
    "2d": (make_2d, "2D"),
    "4d": (make_4d, "4D"),
    "5d": (make_5d, "5 dimensions"),
    "constant": (make_constant, "constant"),
    "all_zero": (make_all_zero, "empty"),
    "nan": (make_nan, "NaN"),
    "inf": (make_inf, "NaN/inf"),
    "absurd_dims": (make_absurd_dims, "absurd"),
    "zero_spacing": (make_zero_spacing, "spacing"),
    "degenerate_affine": (make_degenerate_sform, "spacing"),
    "nan_affine": (make_nan_affine, "NaN"),
    "empty_dicom_folder": (make_empty_dicom_folder, "no DICOM"),
    "mha_2d": (make_mha_2d, "2D"),
    "mha_vector": (make_mha_vector, "components"),
    "mha_garbage": (make_mha_garbage, "cannot read"),
}


def _cases(names):
    return sorted(names)


@pytest.mark.parametrize("case", _cases(CASES))
def test_load_raises_input_error(tmp_path, case):
    make, problem = CASES[case]
    path = make(tmp_path)
    with pytest.raises(InputError) as err:
        load_volume(path)
    e = err.value
    assert problem.lower() in str(e).lower()
    assert e.path == str(path) and e.fix
    assert str(path) in str(e) and "Fix:" in str(e)
    assert "\n" not in str(e)


@pytest.fixture
def good_label(tmp_path) -> Path:
    lab = np.zeros((8, 8, 8), np.uint8)
    lab[2:5, 2:5, 2:5] = 50
    return nifti(tmp_path / "ref_mask.nii.gz", lab)


# Label maps are loaded with check_intensity=False (an empty prediction is a legitimate answer), so the
# value checks (constant, all zero, NaN/inf) apply to the CLI only where a label map cannot hold them.
CLI_SKIP = {"constant", "all_zero"}


@pytest.mark.parametrize("case", _cases(set(CASES) - CLI_SKIP))
def test_cli_exit_code_2_one_line_no_output(tmp_path, good_label, capsys, case):
    make, _ = CASES[case]
    bad = make(tmp_path)
    out = tmp_path / "out" / "eval.csv"
    code = main(["evaluate", str(bad), str(good_label), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("neurospine: error: ") and err.count("\n") == 1
    assert "Traceback" not in err and "Fix:" in err
    assert not out.exists()


def test_cli_subprocess_has_no_traceback(tmp_path, good_label):
    bad = make_truncated_gzip(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "neurospine", "evaluate", str(bad), str(good_label), "--out", str(tmp_path / "o.csv")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and str(bad) in proc.stderr
    assert not (tmp_path / "o.csv").exists()


def test_empty_label_map_is_allowed_without_intensity_check(tmp_path):
    p = make_all_zero(tmp_path)
    assert load_volume(p, check_intensity=False).data.max() == 0
    with pytest.raises(InputError):
        load_volume(p)


def test_trailing_singleton_axes_are_squeezed(tmp_path):
    p = nifti(tmp_path / "x.nii.gz", _random((4, 5, 6, 1, 1)))
    assert load_volume(p).shape == (4, 5, 6)


def test_volume_constructor_guards():
    with pytest.raises(InputError, match="3D"):
        Volume(np.zeros((2, 2, 2, 2)), np.eye(4))
    with pytest.raises(GeometryError, match="4x4"):
        Volume(np.zeros((2, 2, 2)), np.eye(3))
    bad = np.eye(4)
    bad[1, 1] = np.inf
    with pytest.raises(GeometryError, match="NaN or inf"):
        Volume(np.zeros((2, 2, 2)), bad)
    with pytest.raises(GeometryError, match="spacing"):
        Volume(np.zeros((2, 2, 2)), np.diag([1.0, -0.0, 1.0, 1.0]))


def test_large_header_on_small_file_is_refused_before_allocating(tmp_path):
    hdr = nib.Nifti1Header()
    hdr.set_data_shape((2000, 2000, 300))  # 4.8 GB of float32, below MAX_VOXELS
    hdr.set_data_dtype(np.float32)
    hdr.set_zooms((1.0, 1.0, 1.0))
    p = tmp_path / "liar.nii"
    p.write_bytes(hdr.binaryblock + b"\x00" * 4 + b"\x00" * 1000)
    # run under a 2 GiB address-space limit so the bug cannot hurt the shared machine
    script = textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        from neurospine.errors import InputError
        from neurospine.io import load_volume
        try:
            load_volume({str(p)!r})
        except InputError as e:
            print("InputError", e)
        except MemoryError:
            print("MemoryError")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert proc.stdout.startswith("InputError"), proc.stdout + proc.stderr


def test_single_slice_stored_as_3d_is_refused(tmp_path):
    with pytest.raises(InputError, match=r"2D|slice"):
        load_volume(nifti(tmp_path / "thin.nii.gz", _random((1, 64, 64))))
