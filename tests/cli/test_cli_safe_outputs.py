"""Issue 20, part 1: safe writes. Reruns into the same --out are refused unless --overwrite, a lock per output
stem keeps two processes apart, --out is checked before any inference, same-stem inputs never overwrite
each other, stale outputs of a stem go with --overwrite, '-' is stdout and non-regular files are never replaced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from neurospine.cli.main import main
from neurospine.io import save_volume
from tests.unit.test_spine_support import lumbar_phantom, write_threshold_model

ROOT = Path(__file__).resolve().parents[2]
SUFFIXES = ("_seg-spine_msk.nii.gz", "_seg-vert_msk.nii.gz", "_seg-spine_ctd.json", "_seg-spine_snp.png", "_spine.csv")


@pytest.fixture
def threshold_model(tmp_path, monkeypatch):
    write_threshold_model(tmp_path / "models")
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path / "models"


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if "error" in ln]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _no_inference(monkeypatch):
    import neurospine.spine.api as api

    def boom(*a, **k):  # the check must come before any inference
        raise AssertionError("inference ran")

    monkeypatch.setattr(api, "run_file", boom)


# -- refusing to overwrite -------------------------------------------------------------------------------------
def test_rerun_into_the_same_out_is_refused_unless_overwrite(tmp_path, threshold_model, capsys):
    img = save_volume(lumbar_phantom(), tmp_path / "sub-01_T2w.nii.gz")
    out = tmp_path / "out"
    assert main(["spine", str(img), "-o", str(out), "--threads", "1"]) == 0
    before = {s: (out / f"sub-01_T2w{s}").read_bytes() for s in SUFFIXES}
    capsys.readouterr()
    assert main(["spine", str(img), "-o", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "sub-01_T2w_" in line and "already exists" in line and "--overwrite" in line
    assert {s: (out / f"sub-01_T2w{s}").read_bytes() for s in SUFFIXES} == before  # untouched
    assert main(["spine", str(img), "-o", str(out), "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(f"sub-01_T2w{s}" for s in SUFFIXES)  # nothing hidden left


def test_same_stem_inputs_never_overwrite_each_other(tmp_path, threshold_model, capsys, monkeypatch):
    import SimpleITK as sitk

    nii = save_volume(lumbar_phantom("LAS"), tmp_path / "lumbar.nii")
    mha = tmp_path / "lumbar.mha"
    sitk.WriteImage(sitk.ReadImage(str(nii)), str(mha))
    out = tmp_path / "out"
    # one command with both: refused before any inference, nothing written
    assert main(["spine", str(nii), str(mha), "-o", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "lumbar.nii" in line and "lumbar.mha" in line and "lumbar_*" in line
    assert not out.exists() or not any(out.iterdir())
    # one after the other: the second is refused and the first one's outputs stay
    assert main(["spine", str(nii), "-o", str(out), "--threads", "1"]) == 0
    assert main(["spine", str(mha), "-o", str(out), "--threads", "1"]) == 2
    assert "already exists" in _one_error_line(capsys.readouterr().err)
    ctd = json.loads((out / "lumbar_seg-spine_ctd.json").read_text())
    assert json.dumps(ctd).count("lumbar.nii") >= 1 and "lumbar.mha" not in json.dumps(ctd)


def test_overwrite_with_no_snapshot_removes_the_old_snapshot(tmp_path, threshold_model, capsys):
    img = save_volume(lumbar_phantom(), tmp_path / "x.nii.gz")
    out = tmp_path / "out"
    assert main(["spine", str(img), "-o", str(out)]) == 0
    assert (out / "x_seg-spine_snp.png").is_file()
    assert main(["spine", str(img), "-o", str(out), "--no-snapshot", "--overwrite"]) == 0
    assert not (out / "x_seg-spine_snp.png").exists()  # no earlier scan's picture beside the new masks
    assert (out / "x_seg-vert_msk.nii.gz").is_file()


def test_a_failed_rerun_leaves_the_earlier_outputs_whole(tmp_path, threshold_model, capsys, monkeypatch):
    import neurospine.spine.api as api

    img = save_volume(lumbar_phantom(), tmp_path / "x.nii.gz")
    out = tmp_path / "out"
    assert main(["spine", str(img), "-o", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = api.run_file

    def half_then_fail(image, folder, **kw):
        real(image, folder, **kw)  # writes every file (into the staging folder) ...
        from neurospine.errors import InputError

        raise InputError(image, "late failure", "none")  # ... then fails

    monkeypatch.setattr(api, "run_file", half_then_fail)
    assert main(["spine", str(img), "-o", str(out), "--overwrite"]) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no mix of old and new files


# -- one writer per stem -----------------------------------------------------------------------------------------
def test_a_second_process_cannot_write_the_same_stem(tmp_path, threshold_model, capsys):
    img = save_volume(lumbar_phantom(), tmp_path / "x.nii.gz")
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from neurospine.io.outdir import stem_lock\n"
            f"with stem_lock(Path({str(out)!r}), 'x'):\n    print('locked', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert main(["spine", str(img), "-o", str(out)]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert "another neurospine run" in line and "'x'" in line
        assert not any(p.name.startswith("x_") for p in out.iterdir())
    finally:
        holder.communicate("", timeout=30)
    assert main(["spine", str(img), "-o", str(out)]) == 0  # free again; the lock file went with its holder
    assert not any(p.name.startswith(".") for p in out.iterdir())


@pytest.mark.slow  # two interpreters running the pipeline: about 7 s
def test_two_concurrent_runs_into_one_out_never_mix_files(tmp_path, threshold_model):
    """Two real processes, inputs of the same stem on different grids: one wins whole, the other is refused."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    imgs = [save_volume(lumbar_phantom("LAS"), tmp_path / "a" / "scan.nii.gz")]
    imgs.append(save_volume(lumbar_phantom("RPI"), tmp_path / "b" / "scan.nii.gz"))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "NEUROSPINE_MODELS_DIR": str(threshold_model)}
    cmd = [sys.executable, "-m", "neurospine", "spine", "-o", str(out), "--threads", "1"]
    procs = [subprocess.Popen([*cmd, str(i)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in imgs]
    results = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], results
    winner = imgs[[p.returncode for p in procs].index(0)]
    loser_err = results[[p.returncode for p in procs].index(2)][1].decode()
    assert "Traceback" not in loser_err and ("another neurospine run" in loser_err or "already exists" in loser_err)
    affine = nib.load(str(winner)).affine
    for name in ("scan_seg-spine_msk.nii.gz", "scan_seg-vert_msk.nii.gz"):
        np.testing.assert_allclose(nib.load(str(out / name)).affine, affine, atol=1e-4)
    assert str(winner) in (out / "scan_seg-spine_ctd.json").read_text()


# -- up-front checks -----------------------------------------------------------------------------------------------
def test_out_pointing_at_a_file_is_refused_before_inference(tmp_path, capsys, monkeypatch):
    _no_inference(monkeypatch)
    img = save_volume(lumbar_phantom(), tmp_path / "x.nii.gz")
    afile = tmp_path / "results.txt"
    afile.write_text("mine")
    assert main(["spine", str(img), "-o", str(afile)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(afile) in line and "is a file, not a folder" in line and "Fix:" in line
    assert afile.read_text() == "mine"


def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot write into: chmod 555 (non-root) or /sys (root ignores modes)."""
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        return ro
    try:
        fd, probe = tempfile.mkstemp(dir="/sys")
    except OSError:
        return Path("/sys")
    os.close(fd)
    os.unlink(probe)
    pytest.skip("no read-only folder available to this root process")


@pytest.mark.parametrize("sub", ["", "new/deeper"])
def test_read_only_out_is_refused_before_inference(tmp_path, capsys, monkeypatch, sub):
    _no_inference(monkeypatch)
    img = save_volume(lumbar_phantom(), tmp_path / "x.nii.gz")
    ro = _unwritable_folder(tmp_path)
    out = ro / sub if sub else ro
    try:
        assert main(["spine", str(img), "-o", str(out)]) == 2
    finally:
        if ro.is_relative_to(tmp_path):
            ro.chmod(0o755)
    line = _one_error_line(capsys.readouterr().err)
    assert str(out) in line and ("cannot write" in line or "cannot create" in line) and "Fix:" in line


@pytest.mark.parametrize(
    "argv",
    [
        ["table", "{ds}", "-o", "{dir}"],
        ["evaluate", "{img}", "{img}", "-o", "{dir}"],
        ["labels", "-o", "{dir}"],
        ["models", "-o", "{dir}"],
        ["report", "{ds}", "-o", "{dir}"],
    ],
)
def test_file_writers_refuse_a_folder_before_working(tmp_path, capsys, argv):
    (tmp_path / "d").mkdir()
    sub = {"{ds}": str(tmp_path / "nothing"), "{dir}": str(tmp_path / "d"), "{img}": str(tmp_path / "x.nii.gz")}
    assert main([sub.get(a, a) for a in argv]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "is a folder, not a file" in line


# -- '-' is standard output; non-regular files are never replaced ----------------------------------------------------
@pytest.fixture(scope="module")
def batch_out(tmp_path_factory) -> Path:
    from neurospine.batch import BatchConfig, run_batch
    from neurospine.batch.demo import make_demo_dataset

    base = tmp_path_factory.mktemp("batch")
    make_demo_dataset(base / "ds", n_subjects=3, shape=(8, 24, 32))
    run_batch(BatchConfig(base / "ds", base / "out", tasks=["info"], progress=False))
    return base / "out"


def test_table_dash_writes_csv_to_stdout(batch_out, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["table", str(batch_out), "-o", "-"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("subject,") and len(out.splitlines()) == 4  # header + 3 scans, nothing else
    assert not (tmp_path / "-").exists()


def test_evaluate_dash_writes_csv_to_stdout_and_summary_to_stderr(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lab = np.zeros((10, 10, 10), np.uint8)
    lab[2:6, 2:6, 2:6] = 41
    path = tmp_path / "lab.nii.gz"
    nib.save(nib.Nifti1Image(lab, np.eye(4)), str(path))
    assert main(["evaluate", str(path), str(path), "-o", "-", "--mode", "semantic"]) == 0
    cap = capsys.readouterr()
    assert cap.out.splitlines()[0].startswith("mode,level,") and len(cap.out.splitlines()) == 2  # header + label 41
    assert "Dice 1.000" in cap.err and "standard output" in cap.err
    assert not (tmp_path / "-").exists()


def test_labels_dash_is_stdout(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["labels", "-o", "-"]) == 0
    assert "spinal_cord" in capsys.readouterr().out and not (tmp_path / "-").exists()


def test_a_link_to_stdout_is_written_through_not_replaced(batch_out, tmp_path, capsys):
    link = tmp_path / "stdout-link"
    link.symlink_to("/proc/self/fd/1")  # what /dev/stdout is
    assert main(["table", str(batch_out), "-o", str(link)]) == 0
    assert link.is_symlink() and os.readlink(link) == "/proc/self/fd/1"
    assert capsys.readouterr().out.startswith("subject,")  # the table, and no path line after it


def test_a_fifo_is_written_through_not_replaced(batch_out, tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    assert main(["table", str(batch_out), "-o", str(fifo)]) == 0
    reader.join(timeout=30)
    assert got and got[0].startswith(b"subject,")
    assert fifo.is_fifo()


def test_a_link_to_a_regular_file_stays_a_link(batch_out, tmp_path, capsys):
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    link = tmp_path / "cohort.csv"
    link.symlink_to(real)
    assert main(["table", str(batch_out), "-o", str(link)]) == 0
    assert link.is_symlink() and real.read_text().startswith("subject,")


def test_no_cord_error_names_the_final_qc_path(tmp_path, monkeypatch, capsys):
    from neurospine.io import Volume
    from tests.conftest import make_affine
    from tests.unit.test_cord_pipeline import _write_onnx_model

    _write_onnx_model(tmp_path / "models", random=False, nothing=True)
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(tmp_path / "models"))
    rng = np.random.default_rng(0)
    vol = Volume(rng.normal(10, 1, (40, 40, 6)).astype(np.float32), make_affine((0.5, 0.5, 5.0), "LAS"))
    img = save_volume(vol, tmp_path / "flat.nii.gz")
    out = tmp_path / "out"
    assert main(["cord", str(img), "-o", str(out), "--threads", "1"]) == 4
    line = _one_error_line(capsys.readouterr().err)
    assert str(out / "flat_qc-cord.png") in line and ".neurospine-tmp" not in line
    assert sorted(p.name for p in out.iterdir()) == ["flat_qc-cord.png"]


def test_brainage_predict_dash_is_stdout(shared_data, tmp_path, capsys, monkeypatch):
    from neurospine.models.registry import shipped_dir
    from tests.cli.test_cli_brainage import _subset

    if not (shipped_dir() / "brainage_features.json").is_file():
        pytest.skip("brainage_features not shipped in this checkout")
    monkeypatch.chdir(tmp_path)
    src = _subset(shared_data, tmp_path / "t.csv", [0, 90, 180])
    assert main(["brainage", "predict", str(src), "-o", "-", "--passes", "5"]) == 0
    cap = capsys.readouterr()
    lines = cap.out.splitlines()
    assert lines[0].startswith("id,age_pred,") and len(lines) == 4 and "Traceback" not in cap.err
    assert not (tmp_path / "-").exists()
