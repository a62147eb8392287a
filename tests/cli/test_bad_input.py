"""Every bad input gives one clear line (file, problem, fix), exit code 2, no traceback, no output."""

import gzip

import nibabel as nib
import numpy as np
import pytest

from neurospine.errors import GeometryError, InputError
from neurospine.io import load_volume


def _nifti(path, data, spacing=(1.0, 1.0, 1.0)):
    img = nib.Nifti1Image(np.asarray(data), np.diag([*spacing, 1.0]))
    nib.save(img, str(path))
    return path


@pytest.fixture
def good(tmp_path):
    return _nifti(tmp_path / "good.nii.gz", np.random.default_rng(0).random((8, 8, 8)).astype(np.float32))


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_volume(tmp_path / "nope.nii.gz")


def test_truncated_gzip(tmp_path, good):
    raw = good.read_bytes()
    bad = tmp_path / "trunc.nii.gz"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="truncated or corrupt"):
        load_volume(bad)


def test_gz_name_without_gzip(tmp_path):
    bad = tmp_path / "plain.nii.gz"
    bad.write_bytes(b"hello world, not an image")
    with pytest.raises(InputError, match="not gzip"):
        load_volume(bad)


def test_not_an_image(tmp_path):
    bad = tmp_path / "notes.nii"
    bad.write_bytes(b"x" * 400)
    with pytest.raises(InputError):
        load_volume(bad)
    txt = tmp_path / "notes.txt"
    txt.write_text("hi")
    with pytest.raises(InputError, match="unsupported file type"):
        load_volume(txt)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.nii.gz"
    p.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        load_volume(p)


def test_2d_and_4d(tmp_path):
    with pytest.raises(InputError, match="2D"):
        load_volume(_nifti(tmp_path / "a.nii.gz", np.ones((8, 8), np.float32)))
    with pytest.raises(InputError, match="4D"):
        load_volume(_nifti(tmp_path / "b.nii.gz", np.random.default_rng(0).random((4, 4, 4, 3)).astype(np.float32)))
    # a trailing singleton 4th axis is fine
    vol = load_volume(_nifti(tmp_path / "c.nii.gz", np.random.default_rng(0).random((4, 4, 4, 1)).astype(np.float32)))
    assert vol.shape == (4, 4, 4)


def test_empty_constant_nan(tmp_path):
    with pytest.raises(InputError, match="empty"):
        load_volume(_nifti(tmp_path / "z.nii.gz", np.zeros((4, 4, 4), np.float32)))
    with pytest.raises(InputError, match="constant"):
        load_volume(_nifti(tmp_path / "k.nii.gz", np.full((4, 4, 4), 7, np.float32)))
    data = np.ones((4, 4, 4), np.float32)
    data[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        load_volume(_nifti(tmp_path / "n.nii.gz", data))


def test_absurd_header_refused_before_allocating(tmp_path, good):
    img = nib.load(str(good))
    hdr = img.header.copy()
    raw = bytearray(gzip.decompress(good.read_bytes()))
    hdr.set_data_shape((30000, 30000, 30000))
    raw[:348] = hdr.binaryblock
    bad = tmp_path / "huge.nii"
    bad.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="absurd"):
        load_volume(bad)


def test_zero_spacing(tmp_path):
    p = tmp_path / "zero.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((4, 4, 4)).astype(np.float32), np.eye(4)), str(p))
    raw = bytearray(gzip.decompress(p.read_bytes()))
    hdr = nib.Nifti1Header.from_fileobj(__import__("io").BytesIO(bytes(raw[:348])))
    hdr["pixdim"][2] = 0.0
    hdr["qform_code"] = 0
    hdr["sform_code"] = 0
    raw[:348] = hdr.binaryblock
    p.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises((GeometryError, InputError), match="spacing"):
        load_volume(p)


def test_cli_reports_one_line_and_exit_2(tmp_path, capsys):
    from neurospine.cli.main import main

    code = main(
        [
            "evaluate",
            str(tmp_path / "missing.nii.gz"),
            str(tmp_path / "missing2.nii.gz"),
            "--out",
            str(tmp_path / "o.csv"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert err.count("\n") == 1 and "missing" in err and "Fix:" in err
    assert not (tmp_path / "o.csv").exists()
