"""The training engine's parts: budgets, schedule, devices, batch sources, step loop, run-state checkpoints."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from neurospine.errors import InputError  # noqa: E402
from neurospine.nn import engine as E  # noqa: E402


def test_cosine_schedule_runs_from_peak_to_floor():
    assert E.cosine_lr(1.0, 0.0) == pytest.approx(1.0)
    assert E.cosine_lr(1.0, 0.5) == pytest.approx(0.51)
    assert E.cosine_lr(1.0, 1.0) == pytest.approx(0.02)
    assert E.cosine_lr(1.0, 3.0) == pytest.approx(0.02)  # past the budget: stays at the floor


def test_step_budget_counts_steps():
    b = E.Budget(steps=4)
    b.start()
    assert not b.spent(3) and b.spent(4)
    assert b.fraction(2) == 0.5


def test_time_budget_carries_earlier_sessions(monkeypatch):
    now = {"t": 100.0}
    monkeypatch.setitem(E.CLOCKS, "cpu", lambda: now["t"])
    b = E.Budget(minutes=1.0, clock="cpu", used_s=30.0)
    b.start()
    assert b.fraction(0) == pytest.approx(0.5) and not b.spent(0)
    now["t"] += 30.0
    assert b.spent(0) and b.seconds() == pytest.approx(60.0)


def test_missing_cuda_is_a_clear_input_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InputError, match="--device cuda"):
        E.select_device("cuda")
    assert E.select_device("cpu").type == "cpu"


def test_device_option_defaults_to_the_cpu():
    p = argparse.ArgumentParser()
    E.add_device_option(p, workers=True)
    a = p.parse_args([])
    assert (a.device, a.workers) == ("cpu", 0)
    with pytest.raises(SystemExit):
        p.parse_args(["--device", "tpu"])


def _sampler(rng):
    x = rng.normal(size=(4, 3)).astype(np.float32)
    return x, (x.sum(axis=1, keepdims=True) > 0).astype(np.float32)


def test_in_process_batches_follow_the_callers_generator():
    a = E.batches(_sampler, np.random.default_rng(3))
    rng = np.random.default_rng(3)
    for _ in range(3):
        np.testing.assert_array_equal(next(a)[0], _sampler(rng)[0])


def test_worker_batches_are_deterministic_per_seed():
    def first(seed):
        it = E.batches(_sampler, np.random.default_rng(0), workers=1, seed=seed, step0=5)
        return next(it)[0]

    np.testing.assert_array_equal(first(1), first(1))
    assert not np.array_equal(first(1), first(2))


def _tiny_trainer():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return E.Trainer(model, opt, torch.nn.functional.binary_cross_entropy_with_logits, "cpu", clip_norm=1.0)


def test_run_steps_learns_and_checkpoints(tmp_path):
    from neurospine.nn.checkpoint import load_checkpoint

    trainer = _tiny_trainer()
    plan = E.Checkpointing(tmp_path / "ck.pt", extra=lambda step, b: {"seen": step})
    res = E.run_steps(
        trainer, E.batches(_sampler, np.random.default_rng(0)), E.Budget(steps=60), lr=0.5, checkpoint=plan
    )
    assert res.step == 60 and np.mean(res.losses[-10:]) < np.mean(res.losses[:10])
    fresh = _tiny_trainer()
    step, extra = load_checkpoint(tmp_path / "ck.pt", fresh.model, fresh.opt)
    assert (step, extra["seen"]) == (60, 60)
    assert torch.equal(fresh.model.weight, trainer.model.weight)


def test_resumed_run_continues_where_it_stopped(tmp_path):
    """6 steps stopped after 3 and resumed from the checkpoint give the weights of 6 steps in one go."""
    from neurospine.nn.checkpoint import load_checkpoint

    class StopAt(E.Budget):
        stop_at: int = 10**9

        def spent(self, step):
            return step >= self.stop_at or super().spent(step)

    def session(path, stop_at=10**9):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        opt = torch.optim.AdamW(model.parameters(), lr=0.1)
        trainer = E.Trainer(model, opt, torch.nn.functional.binary_cross_entropy_with_logits)
        step, _ = load_checkpoint(path, model, opt)
        rng = np.random.default_rng(0)
        for _ in range(step):  # the same batch stream as an uninterrupted run
            _sampler(rng)
        budget = StopAt(steps=6)
        budget.stop_at = stop_at
        res = E.run_steps(
            trainer, E.batches(_sampler, rng), budget, lr=0.5, step=step, checkpoint=E.Checkpointing(path)
        )
        return res.step, model.weight.detach().clone()

    assert session(tmp_path / "whole.pt")[0] == 6
    first, w3 = session(tmp_path / "split.pt", stop_at=3)
    second, w6 = session(tmp_path / "split.pt")
    assert (first, second) == (3, 6)
    assert torch.equal(w6, session(tmp_path / "whole2.pt")[1])
    assert not torch.equal(w3, w6)


def test_epoch_skips_tiny_batches_and_run_state_round_trips(tmp_path):
    trainer = _tiny_trainer()
    xs = np.random.default_rng(1).normal(size=(7, 3)).astype(np.float32)

    def make(idx, rng):
        return xs[idx], (xs[idx].sum(axis=1, keepdims=True) > 0).astype(np.float32)

    losses = E.train_epoch(trainer, np.random.default_rng(0), np.arange(7), 3, make, 0.1)
    assert len(losses) == 2  # 3 + 3, the last single index is skipped
    state = {"epoch": 1, "history": [(1, losses[0], 0.0)]}
    E.save_run_state(tmp_path / "run.pt", trainer.model, trainer.opt, state)
    fresh = _tiny_trainer()
    assert E.load_run_state(tmp_path / "run.pt", fresh.model, fresh.opt) == state
    assert torch.equal(fresh.model.weight, trainer.model.weight)
    assert E.load_run_state(tmp_path / "none.pt", fresh.model, fresh.opt) is None


def test_run_state_reads_checkpoints_from_before_the_engine(tmp_path):
    trainer = _tiny_trainer()
    path = tmp_path / "ckpt.pt"
    torch.save({"model": trainer.model.state_dict(), "opt": trainer.opt.state_dict(), "state": {"epoch": 4}}, path)
    fresh = E.Trainer(torch.nn.Linear(3, 1), torch.optim.SGD(torch.nn.Linear(3, 1).parameters(), lr=0.1), lambda o: o)
    assert E.load_run_state(path, fresh.model, fresh.opt) == {"epoch": 4}
    assert torch.equal(fresh.model.weight, trainer.model.weight)


def test_train_commands_name_device_and_workers_only_when_not_default():
    from neurospine.brainage import training_t1 as bt
    from neurospine.spine import body_training as sb

    plain = sb.train_command(sb.build_parser().parse_args([]))
    assert "--device" not in plain and "--workers" not in plain
    fast = sb.train_command(sb.build_parser().parse_args(["--workers", "2", "--device", "cuda"]))
    assert "--workers 2" in fast and "--device cuda" in fast
    assert "--device cuda" in bt.train_command(bt._parser().parse_args(["--device", "cuda"]))
    assert "--device" not in bt.train_command(bt._parser().parse_args([]))


def test_autocast_forward_keeps_the_loss_in_float32():
    """The CUDA path (bf16 autocast, float32 loss), exercised with CPU autocast: no GPU needed."""
    seen = {}

    def loss(out, target):
        seen["dtype"] = out.dtype
        return torch.nn.functional.binary_cross_entropy_with_logits(out, target)

    def forward(x):
        out = model(x)
        seen["raw"] = out.dtype
        return out

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    trainer = E.Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), loss, forward=forward)
    trainer.amp = True  # as on CUDA
    value = trainer.step(_sampler(np.random.default_rng(0)))
    assert seen["raw"] == torch.bfloat16  # the forward pass ran in autocast
    assert seen["dtype"] == torch.float32 and np.isfinite(value)
    assert model.weight.dtype == torch.float32
