"""Output folders: up-front checks, per-stem locks, staging that installs a run's files together."""

from __future__ import annotations

import pytest

from neurospine.errors import InputError
from neurospine.io.outdir import clean_stale_staging, prepare_out_dir, staged_outputs, stem_lock


def test_prepare_out_dir_creates_and_refuses_files(tmp_path):
    out, created = prepare_out_dir(tmp_path / "a" / "b")
    assert created and out.is_dir() and list(out.iterdir()) == []  # the write check leaves nothing
    assert prepare_out_dir(out) == (out, False)
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        prepare_out_dir(tmp_path / "f")
    with pytest.raises(InputError, match="a parent is a file"):
        prepare_out_dir(tmp_path / "f" / "sub")
    with pytest.raises(InputError, match="standard output"):
        prepare_out_dir("-")


def test_stem_lock_is_exclusive_and_leaves_no_file(tmp_path):
    with stem_lock(tmp_path, "x"):
        with pytest.raises(InputError, match="another neurospine run"):
            with stem_lock(tmp_path, "x"):  # a second open file description: flock refuses it, as for another process
                pass
        with stem_lock(tmp_path, "y"):  # other stems are free
            pass
    assert list(tmp_path.iterdir()) == []


def test_staging_installs_written_files_and_removes_stale_ones(tmp_path):
    stale = tmp_path / "s_snp.png"
    stale.write_text("old picture")
    keep = tmp_path / "s_other_input.csv"  # not an output of this stem's task: untouched
    keep.write_text("mine")
    expected = [tmp_path / "s_msk.nii.gz", stale]
    with staged_outputs(tmp_path, "s", expected) as st:
        (st.dir / "s_msk.nii.gz").write_text("new mask")
        assert st.final(st.dir / "s_msk.nii.gz") == tmp_path / "s_msk.nii.gz"
        assert st.rewrite(f"see {st.dir}/s_msk.nii.gz") == f"see {tmp_path}/s_msk.nii.gz"
        st.install()
    assert (tmp_path / "s_msk.nii.gz").read_text() == "new mask"
    assert not stale.exists() and keep.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s_msk.nii.gz", "s_other_input.csv"]


def test_staging_discards_everything_when_not_installed(tmp_path):
    with pytest.raises(RuntimeError):
        with staged_outputs(tmp_path, "s", []) as st:
            (st.dir / "s_msk.nii.gz").write_text("half")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def test_stale_staging_of_one_stem_only(tmp_path):
    for name in (".neurospine-tmp.a.x1y2", ".neurospine-tmp.a-b.z3", ".neurospine-tmp.a.b.q9"):
        (tmp_path / name).mkdir()
    clean_stale_staging(tmp_path, "a")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".neurospine-tmp.a-b.z3", ".neurospine-tmp.a.b.q9"]
