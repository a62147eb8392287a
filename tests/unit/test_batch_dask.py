"""The same batch on a Dask distributed cluster (a 2-worker LocalCluster)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from neurospine.batch import BatchConfig, run_batch
from neurospine.batch.demo import make_demo_dataset
from neurospine.batch.verify import verify_outputs
from neurospine.errors import InputError


def test_batch_on_local_cluster(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    make_demo_dataset(tmp_path / "ds", n_subjects=5, shape=(8, 32, 48), corrupt=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        cfg = BatchConfig(
            tmp_path / "ds",
            tmp_path / "out",
            tasks=["selftest"],
            scheduler=cl.scheduler_address,
            progress=False,
            options={"fail_on": "sub-002"},
        )
        s = run_batch(cfg)
        assert (s.done, s.failed) == (3, 2)
        assert s.executor.startswith("dask:")
        con = sqlite3.connect(tmp_path / "out/derivatives/neurospine/neurospine.sqlite3")
        workers = {r[0].rsplit(":", 1)[0] for r in con.execute("SELECT worker FROM cases WHERE status='done'")}
        errors = {r[0] for r in con.execute("SELECT error_type FROM cases WHERE status='failed'")}
        assert errors == {"InputError", "RuntimeError"}
        assert workers  # host recorded per case
        assert verify_outputs(tmp_path / "out").ok
        again = run_batch(
            BatchConfig(
                tmp_path / "ds",
                tmp_path / "out",
                tasks=["selftest"],
                scheduler=cl.scheduler_address,
                progress=False,
                retry_failed=False,
                options={"fail_on": "sub-002"},
            )
        )
        assert again.reused == 5 and again.done == 0


def test_unreachable_scheduler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("distributed")
    monkeypatch.setattr("neurospine.batch.executors.CONNECT_TIMEOUT_S", 1)
    make_demo_dataset(tmp_path / "ds", n_subjects=1, shape=(8, 32, 48))
    with pytest.raises(InputError, match="cannot reach the Dask scheduler"):
        run_batch(
            BatchConfig(
                tmp_path / "ds", tmp_path / "out", tasks=["info"], progress=False, scheduler="tcp://127.0.0.1:9"
            )
        )
