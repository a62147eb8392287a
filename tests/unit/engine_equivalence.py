"""Tiny, deterministic runs of every ported trainer, for the engine equivalence tests.

Each task is run through its ``main(argv)`` on made-up data in a temporary folder, with a fake clock: every
clock (``time.time``, ``time.monotonic``, ``time.process_time``) reads ``10 s x backward passes so far``,
so time-budgeted loops take exactly ``minutes * 6`` steps and their cosine schedule is reproducible. Every
``loss.backward()`` records the loss value. The result (per-step losses, a digest of the trained weights)
was recorded from the trainers as they were before the engine (``tests/unit/data/engine_equivalence.json``,
made by ``python -m tests.unit.engine_equivalence --write``) and is compared with the ported trainers.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import platform
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

FIXTURE = Path(__file__).resolve().parent / "data" / "engine_equivalence.json"
TICK_S = 10.0


@contextlib.contextmanager
def fake_clock_and_losses() -> Iterator[list[float]]:
    """Patch the clocks and ``Tensor.backward``; yields the list the losses are appended to."""
    import torch

    losses: list[float] = []
    real_backward = torch.Tensor.backward

    def backward(self: Any, *a: Any, **k: Any) -> Any:
        losses.append(float(self.detach().float().item()))
        return real_backward(self, *a, **k)

    def clock() -> float:
        return 1000.0 + TICK_S * len(losses)

    saved = {name: getattr(time, name) for name in ("time", "monotonic", "process_time")}
    torch.Tensor.backward = backward  # type: ignore[method-assign]
    for name in saved:
        setattr(time, name, clock)
    try:
        yield losses
    finally:
        torch.Tensor.backward = real_backward  # type: ignore[method-assign]
        for name, fn in saved.items():
            setattr(time, name, fn)


def weights_digest(state: dict[str, Any]) -> dict[str, Any]:
    """sha256 over the float tensors (sorted names) and their summed absolute value."""
    import torch

    h = hashlib.sha256()
    total = 0.0
    for k in sorted(state):
        v = state[k]
        if torch.is_tensor(v) and v.is_floating_point():
            a = v.detach().cpu().contiguous().numpy()
            h.update(k.encode())
            h.update(a.tobytes())
            total += float(np.abs(a.astype(np.float64)).sum())
    return {"sha256": h.hexdigest(), "abs_sum": total}


# ---- made-up data -----------------------------------------------------------------------------


def _slice2d_data(out: Path) -> None:
    from neurospine.slice2d import data as d

    rng = np.random.default_rng(5)
    samples = []
    for i, source in enumerate(("vesal_mri2d", "fcs_vb2_chu_lumbar_t2", "fewshot_ct_sag")):
        img = rng.random((64, 56)).astype(np.float32)
        tgt = np.zeros((64, 56), np.uint8)
        tgt[8:20, 10:40] = d.BODY
        tgt[20:26, 10:40] = d.DISC if i == 0 else d.BG_OR_DISC
        tgt[26:40, 10:40] = d.BODY
        tgt[:4] = d.IGNORE
        samples.append(d.Sample(img, tgt, f"s{i}", source, "ct" if i == 2 else "mr", i == 0))
    d.save_samples(samples, out / "train_real.npz")


def _spine_cases() -> list[Any]:
    from neurospine.spine import data as D

    rng = np.random.default_rng(6)
    cases = []
    for i in range(2):
        image = (rng.random((6, 48, 40)) * 255).astype(np.uint8)
        target = np.ones((6, 48, 40), np.uint8)
        target[1:5, 10:30, 8:20] = 0
        target[:, :, :3] = D.IGNORE
        cases.append(D.TrainCase(f"fake-{i}", "body", image, target, (1.0, 1.0, 3.0)))
    return cases


def _fake_synth_case(seed: int, rng: np.random.Generator, *_a: Any) -> Any:
    from neurospine.spine import data as D

    case = _spine_cases()[seed % 2]
    shift = int(rng.integers(0, 5))
    return D.TrainCase(f"synth-{seed}", "body", np.roll(case.image, shift, axis=1), case.target, case.spacing_mm)


@contextlib.contextmanager
def _fake_synth(on: bool) -> Iterator[None]:
    """Put :func:`_fake_synth_case` in place of the synthetic engine wherever the spine trainers look it up."""
    import importlib

    mods = []
    for name in ("neurospine.spine.training", "neurospine.spine.train_batches"):
        try:
            mods.append(importlib.import_module(name))
        except ImportError:
            continue
    saved = [(m, k, getattr(m, k)) for m in mods for k in ("synth_available", "synth_case") if hasattr(m, k)]
    if on:
        for m, k, _ in saved:
            setattr(m, k, (lambda: True) if k == "synth_available" else _fake_synth_case)
    try:
        yield
    finally:
        for m, k, v in saved:
            setattr(m, k, v)


def _cord_volume(seed: int) -> Any:
    from neurospine.cord.data import TrainVolume

    rng = np.random.default_rng(seed)
    shape = (40, 40, 12)
    yy, xx = np.mgrid[:40, :40]
    cord2d = (((yy - 20) ** 2 + (xx - 20) ** 2) < 16).astype(np.float32)
    canal2d = (((yy - 20) ** 2 + (xx - 20) ** 2) < 49).astype(np.float32)
    cord = np.repeat(cord2d[:, :, None], shape[2], axis=2)
    canal = np.repeat(canal2d[:, :, None], shape[2], axis=2)
    image = (rng.random(shape) * 0.3 + canal * 0.5 - cord * 0.3).astype(np.float32)
    return TrainVolume(f"synth-{seed}", f"synth-{seed}", image, cord, canal, (0.5, 0.5, 2.0))


def _brainage_data(root: Path, out: Path) -> None:
    from neurospine.brainage.t1_net import CACHE_SHAPE

    root.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    n = 12
    lines = ["file,ixi_id,age"] + [f"t1/s{i}.nii.gz,IXI{i:03d},{20 + 5 * i + rng.random():.2f}" for i in range(n)]
    (root / "ages.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    np.save(out / "cache_t1.npy", (rng.random((n, *CACHE_SHAPE)) * 2).astype(np.float16))


# ---- the runs ----------------------------------------------------------------------------------


def _run(main: Callable[[list[str]], int], argv: list[str], ckpt: Path, model_key: str) -> dict[str, Any]:
    import torch

    torch.manual_seed(0)  # trainers that do not seed torch themselves start from the same state
    with fake_clock_and_losses() as losses:
        rc = main(argv)
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    return {"rc": rc, "losses": losses, "weights": weights_digest(state[model_key])}


def run_task(task: str, tmp: Path, extra: list[str] | None = None) -> dict[str, Any]:
    """One tiny run of ``task`` in ``tmp`` (CPU, fake clock); ``extra`` options are appended."""
    import torch

    torch.set_num_threads(1)
    extra = list(extra or [])
    if task == "slice2d":
        from neurospine.slice2d import training as s2

        out = tmp / "s2"
        out.mkdir(parents=True, exist_ok=True)
        _slice2d_data(out)
        saved = s2.calibrate_export
        s2.calibrate_export = lambda *a, **k: 0  # needs the real data; not part of the loop
        try:
            argv = ["--out", str(out), "--synth", "0", "--minutes", "0.5", "--batch", "2", "--crop", "32"]
            return _run(s2.main, argv + extra, out / "checkpoint.pt", "model")
        finally:
            s2.calibrate_export = saved
    if task in ("spine-body", "spine-body-synth"):
        from neurospine.spine import body_training as sb
        from neurospine.spine import data as D

        out = tmp / "sb"
        saved = D.train_cases
        D.train_cases = lambda *a, **k: _spine_cases()
        argv = ["--out", str(out), "--data", str(tmp), "--minutes", "0.5", "--batch", "2", "--patch", "32"]
        argv += ["--threads", "1"]
        if task == "spine-body":
            argv += ["--synth-fraction", "0"]
        else:  # a stand-in for the synthetic engine that draws from the training generator like the real one
            argv += ["--synth-fraction", "0.5", "--synth-pool", "2", "--synth-refresh", "2", "--minutes", "0.8"]
        try:
            with _fake_synth(task.endswith("-synth")):
                return _run(sb.main, argv + extra, out / "checkpoint.pt", "model")
        finally:
            D.train_cases = saved
    if task in ("spine", "spine-synth"):
        from neurospine.spine import data as D
        from neurospine.spine import training as T

        out = tmp / "sp"
        saved = D.train_cases, D.eval_cases
        D.train_cases = lambda *a, **k: _spine_cases()
        D.eval_cases = lambda *a, **k: []
        argv = ["--out", str(out), "--data", str(tmp), "--steps", "3", "--batch", "2", "--patch", "32"]
        argv += ["--threads", "1", "--labelmap-fraction", "0", "--no-calibrate"]
        if task == "spine":
            argv += ["--synth-fraction", "0"]
        else:
            argv += ["--synth-fraction", "0.5", "--synth-pool", "2", "--synth-refresh", "2", "--steps", "5"]
        try:
            with _fake_synth(task.endswith("-synth")):
                return _run(T.main, argv + extra, out / "checkpoint.pt", "model")
        finally:
            D.train_cases, D.eval_cases = saved
    if task == "cord":
        from neurospine.cord import training as ct

        out = tmp / "cord"
        saved_build = ct.build_synth
        ct.build_synth = lambda _cache, seeds, *a, **k: [_cord_volume(s) for s in seeds]
        argv = ["--out", str(out), "--synth-train", "2", "--synth-val", "1", "--real-weight", "0", "--gmc-weight", "0"]
        argv += ["--minutes", "0.5", "--batch", "2", "--patch", "32", "--val-every", "2", "--no-export"]
        try:
            return _run(ct.main, argv + extra, out / "ckpt.pt", "model")
        finally:
            ct.build_synth = saved_build
    if task in ("brainage-t1", "brainage-t1-lowres"):
        from neurospine.brainage import training_t1 as bt

        root, out = tmp / "ixi", tmp / task
        _brainage_data(root, out)
        argv = ["--data", str(root), "--out", str(out), "--export", str(out / "export"), "--max-epochs", "2"]
        argv += ["--batch", "4", "--width", "4", "--mc", "2"]
        if task == "brainage-t1-lowres":
            argv += ["--recipe", "lowres", "--max-epochs", "4"]  # plans after 3 epochs, averages the last
        return _run(bt.main, argv + extra, out / "ckpt.pt", "model")
    raise ValueError(task)


TASKS = (
    "slice2d",
    "spine-body",
    "spine-body-synth",
    "brainage-t1",
    "brainage-t1-lowres",
    "spine",
    "spine-synth",
    "cord",
)


def machine() -> dict[str, str]:
    import torch

    return {"torch": torch.__version__, "machine": platform.machine(), "processor": _cpu_model()}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main() -> None:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--write", action="store_true", help=f"record the current trainers into {FIXTURE}")
    ap.add_argument("--task", action="append", help="only these tasks (default: all)")
    a = ap.parse_args()
    rec: dict[str, Any] = json.loads(FIXTURE.read_text()) if FIXTURE.is_file() else {}
    rec.setdefault("tasks", {})
    for task in a.task or TASKS:
        with tempfile.TemporaryDirectory() as tmp:
            res = run_task(task, Path(tmp))
        print(task, res)
        rec["tasks"][task] = {"losses": res["losses"], "weights": res["weights"]}
    rec["machine"] = machine()
    rec.pop("recorded_at_commit", None)  # say by hand which code made it
    rec["command"] = "OMP_NUM_THREADS=1 python -m tests.unit.engine_equivalence --write (trainers before the engine)"
    if a.write:
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        FIXTURE.write_text(json.dumps(rec, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
