"""``neurospine train cord``: train the contrast-agnostic soft cord/canal model (torch, CPU, 1 thread).

Soft targets (partial-volume fractions) and a regression loss (MSE + soft Dice on the soft targets,
no thresholding), one 2D U-Net for every contrast. Time-budgeted, checkpointed every few minutes,
resumable (run the same command again). The best checkpoint on held-out synthetic cases is exported
to ONNX with its model card.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from neurospine.cord.data import (
    PatchConfig,
    TrainVolume,
    gmc_training_cases,
    load_cache,
    load_gmchallenge,
    load_real,
    sample_batch,
    save_cache,
    with_edge_band,
)

log = logging.getLogger(__name__)

DEFAULT_OUT = Path("runs") / "cord"
SHARED_DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "models" / "weights"
MODEL_NAME = "cord_softseg"
VERSION = "1.2.0"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="neurospine train cord",
        description="Train the contrast-agnostic soft cord/canal 2D U-Net on synthetic multi-contrast cases "
        "(neurospine.synth) plus real cord masks (PAM50 template, SCT tutorial MT-on silver mask). Resumes from "
        "OUT/ckpt.pt. Example: neurospine train cord --minutes 25",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="run folder (checkpoints, cache, log)")
    p.add_argument(
        "--minutes",
        type=float,
        default=25.0,
        help="optimisation budget in CPU minutes of this process (1 thread; CPU time, so a busy machine "
        "does not shorten training)",
    )
    p.add_argument(
        "--max-wall-minutes",
        type=float,
        default=None,
        help="also stop after this many wall-clock minutes in this invocation (resume later)",
    )
    p.add_argument("--synth-train", type=int, default=48, help="synthetic training cases")
    p.add_argument("--synth-val", type=int, default=6, help="synthetic held-out validation cases")
    p.add_argument(
        "--synth-lumbar",
        type=int,
        default=0,
        help="extra synthetic cases whose field reaches below the conus (thoraco-lumbar and lumbar fields, half of "
        "them with a clumped cauda equina), so the model learns where the cord ends; 0 = none",
    )
    p.add_argument(
        "--p-cauda",
        type=float,
        default=0.0,
        help="share of patches centred on the canal of a slice without cord (below the conus: cauda equina, "
        "target cord 0); 0 = none",
    )
    p.add_argument(
        "--contrasts",
        default=",".join(_CONTRASTS),
        help="comma-separated synthetic contrasts, cycled by seed (repeat a name to draw it more often)",
    )
    p.add_argument(
        "--real-weight",
        type=float,
        default=0.25,
        help="share of patches drawn from the PAM50 template and the SCT tutorial silver mask",
    )
    p.add_argument(
        "--gmc-weight",
        type=float,
        default=0.0,
        help="share of patches drawn from the grey-matter challenge training people (cord.data.GMC_TRAIN; manual "
        "cord masks as hard targets); 0 = not used",
    )
    p.add_argument(
        "--gmc-leave-out",
        default="",
        help="comma-separated challenge training people to leave out (e.g. gmc-9669), for leave-one-site-out checks",
    )
    p.add_argument(
        "--edge-band-mm",
        type=float,
        default=0.0,
        help="leave the cord target unsupervised within this distance of a manual mask's edge (real masks only; "
        "the synthetic partial-volume targets set the edge); 0 = supervise every pixel",
    )
    p.add_argument(
        "--init-onnx",
        type=Path,
        default=None,
        help="start from the weights of a shipped ONNX cord model (fine-tuning) instead of random ones",
    )
    p.add_argument("--version", default=VERSION, help="version written on the exported model card")
    p.add_argument("--cache", type=Path, default=None, help="synthetic case cache (default OUT/cache)")
    p.add_argument("--shared-data", type=Path, default=SHARED_DATA, help="shared data folder (default ../shared/data)")
    p.add_argument("--batch", type=int, default=16, help="training batch size (default %(default)s)")
    p.add_argument("--patch", type=int, default=64, help="training patch edge in voxels (default %(default)s)")
    p.add_argument("--base", type=int, default=16, help="channels of the first U-Net stage (default %(default)s)")
    p.add_argument("--depth", type=int, default=4, help="U-Net depth in stages (default %(default)s)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="initialisation and sampling seed (default %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default %(default)s)")
    p.add_argument(
        "--device",
        default="cpu",
        help="torch device (cpu, cuda); on a GPU --minutes counts wall-clock minutes instead of CPU minutes",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes that sample training batches (and build missing synthetic cases); 0 = this process",
    )
    p.add_argument("--val-every", type=int, default=250, help="steps between validations")
    p.add_argument(
        "--ckpt-minutes",
        type=float,
        default=3.0,
        help="write a checkpoint every this many minutes (default %(default)s)",
    )
    p.add_argument("--export-dir", type=Path, default=WEIGHTS_DIR, help="where the ONNX model and card go")
    p.add_argument("--no-export", action="store_true", help="train only; do not export ONNX and the model card")
    return p.parse_args(argv)


# ---- data -------------------------------------------------------------------------------------

_PLANES = ("axial", "sagittal", "axial", "sagittal", "isotropic")
_CONTRASTS = ("t2w", "t1w", "t2sw", "random", "stir", "random", "t2w")
_LEVELS = ("C1-C7", "C2-T2", "C3-C7", "C1-T1", "T6-T12", "T10-L2", "C2-C6")
#: fields of the ``--synth-lumbar`` cases: every one reaches below the conus (mid L1 to mid L2)
_LUMBAR_LEVELS = ("T11-S1", "L1-S1", "T12-L5", "T9-L3", "T10-S1", "L2-S1")
#: first seed of the ``--synth-lumbar`` cases (apart from the training 1000+ and validation 90000+ seeds)
LUMBAR_SEED0 = 5000


def synth_case(seed: int, contrasts: tuple[str, ...] = _CONTRASTS, lumbar: bool = False) -> TrainVolume:
    """One synthetic case: plane, contrast, levels and slice thickness vary with the seed (CT excluded:
    the cord is not visible on CT). ``lumbar``: a field that reaches below the conus, and for half the seeds
    (a random draw) a clumped cauda equina."""
    from neurospine.cord.data import from_volumes
    from neurospine.synth import SynthConfig, generate_case

    rng = np.random.default_rng(seed)
    plane = _PLANES[seed % len(_PLANES)]
    contrast = contrasts[seed % len(contrasts)]
    choices = _LUMBAR_LEVELS if lumbar else _LEVELS
    levels = choices[int(rng.integers(len(choices)))]
    inplane = float(rng.uniform(0.45, 1.0))
    if plane == "axial":
        spacing = (inplane, inplane, float(rng.uniform(2.0, 8.0)))
    elif plane == "sagittal":
        spacing = (inplane, inplane, float(rng.uniform(1.5, 4.0)))
    else:
        iso = float(rng.uniform(0.7, 1.2))
        spacing = (iso, iso, iso)
    # drawn last, so the plane, contrast and field of a seed do not depend on it
    cauda = "clumped" if lumbar and rng.random() < 0.5 else "roots"
    cfg = SynthConfig(levels=levels, contrast=contrast, spacing_mm=spacing, plane=plane, cauda=cauda)
    case = generate_case(seed, cfg)
    return from_volumes(f"synth-{seed}", f"synth-{seed}", case.image, case.cord_soft, case.canal_soft)


def _build_one(job: tuple[Path, int, tuple[str, ...], bool]) -> None:
    cache, seed, contrasts, lumbar = job
    build_synth(cache, [seed], contrasts, lumbar=lumbar)


def build_synth(
    cache: Path, seeds: list[int], contrasts: tuple[str, ...] = _CONTRASTS, workers: int = 0, lumbar: bool = False
) -> list[TrainVolume]:
    vols = []
    tag = ("" if contrasts == _CONTRASTS else "-" + "-".join(contrasts)) + ("-lumbar" if lumbar else "")
    missing = [s for s in seeds if not (cache / f"synth-{s}{tag}.npz").is_file()]
    if workers > 1 and len(missing) > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers) as pool:
            pool.map(_build_one, [(cache, s, contrasts, lumbar) for s in missing])
    for s in seeds:
        path = cache / f"synth-{s}{tag}.npz"
        if path.is_file():
            vols.append(load_cache(path, f"synth-{s}", f"synth-{s}"))
            continue
        t0 = time.time()
        try:
            v = synth_case(s, contrasts, lumbar)
        except (ValueError, RuntimeError, IndexError) as e:  # an engine failure must not stop training
            log.warning("synth case %d failed (%s: %s); skipped", s, type(e).__name__, e)
            continue
        save_cache(v, path)
        log.info("synth case %d: %s %.1fs", s, v.image.shape, time.time() - t0)
        vols.append(v)
    return vols


# ---- training ---------------------------------------------------------------------------------


def mix_probabilities(
    n_synth: int, n_real: int, n_gmc: int, real_weight: float, gmc_weight: float
) -> npt.NDArray[np.float64]:
    """Per-volume sampling probabilities: ``real_weight`` and ``gmc_weight`` shares for the two real groups
    (split evenly inside each), the rest for the synthetic cases; a missing group's share goes to the others."""
    shares = np.array([max(0.0, 1.0 - real_weight - gmc_weight), real_weight, gmc_weight], dtype=np.float64)
    counts = np.array([n_synth, n_real, n_gmc])
    shares[counts == 0] = 0.0
    if shares.sum() <= 0:
        shares = (counts > 0).astype(np.float64)
    shares /= shares.sum()
    return np.concatenate([np.full(n, sh / n) for n, sh in zip(counts, shares, strict=True) if n > 0])


def load_onnx_weights(torch: Any, model: Any, path: Path) -> None:
    """Copy the initializers of an exported cord model (named like the torch parameters) into ``model``."""
    import onnx
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}
    state = model.state_dict()
    missing = [k for k in state if k not in inits or tuple(inits[k].shape) != tuple(state[k].shape)]
    if missing:
        raise ValueError(f"{path}: no matching weights for {missing[:3]} (another architecture?)")
    model.load_state_dict({k: torch.from_numpy(np.array(inits[k])) for k in state})


def _loss(torch: Any, logits: Any, target: Any, weights: Any) -> Any:
    """10 x MSE + soft Dice. ``weights`` are per channel (N, 2) or per pixel (N, 2, H, W); a pixel of weight 0
    is left out of both terms, and a channel's Dice counts by its mean weight."""
    prob = torch.sigmoid(logits)
    w = (weights[:, :, None, None] if weights.dim() == 2 else weights).expand_as(prob)
    mse = ((prob - target) ** 2 * w).mean() / w.mean().clamp_min(1e-6)
    inter = (prob * target * w).sum(dim=(2, 3))
    denom = (prob * w).sum(dim=(2, 3)) + (target * w).sum(dim=(2, 3))
    dice = 1.0 - (2.0 * inter + 1.0) / (denom + 1.0)
    channel_w = w.mean(dim=(2, 3))
    soft_dice = (dice * channel_w).sum() / channel_w.sum().clamp_min(1e-6)
    return 10.0 * mse + soft_dice


def _batch_stream(vols: list[TrainVolume], probs: Any, cfg: PatchConfig, args: Any, step: int) -> Any:
    """Endless training batches (:func:`neurospine.nn.engine.batches`): sampled here (``--workers 0``) or by
    worker processes, each with its own seed."""
    from neurospine.nn import engine as E

    return E.batches(
        lambda rng: sample_batch(vols, rng, args.batch, cfg, probs),
        np.random.default_rng(args.seed + step),
        workers=args.workers,
        seed=args.seed,
        step0=step,
        pin_memory=args.device != "cpu",
    )


def _val_dice(torch: Any, model: Any, val: tuple[np.ndarray, np.ndarray, np.ndarray], device: Any = "cpu") -> float:
    x, y, _ = val
    model.eval()
    with torch.no_grad():
        prob = torch.sigmoid(model(torch.from_numpy(x).to(device))).cpu().numpy()
    model.train()
    p, t = prob[:, 0], y[:, 0]
    inter = float((p * t).sum())
    return 2.0 * inter / float(p.sum() + t.sum() + 1e-6)


def main(argv: list[str] | None = None) -> int:
    import functools

    import torch

    from neurospine.nn import engine as E
    from neurospine.nn.checkpoint import load_checkpoint, save_checkpoint
    from neurospine.nn.unet import UNet

    args = parse_args(list(argv or []))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("neurospine.cord").setLevel(logging.INFO)
    logging.getLogger("neurospine.nn").setLevel(logging.INFO)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    t_data = time.time()
    real = load_real(args.shared_data) if args.real_weight > 0 else []
    try:
        gmc_cases = gmc_training_cases({x.strip() for x in str(args.gmc_leave_out).split(",") if x.strip()})
    except ValueError as e:
        log.error("--gmc-leave-out: %s", e)
        return 2
    gmc = load_gmchallenge(args.shared_data, gmc_cases) if args.gmc_weight > 0 else []
    real = [with_edge_band(v, args.edge_band_mm) for v in real]
    gmc = [with_edge_band(v, args.edge_band_mm) for v in gmc]
    synth_train: list[TrainVolume] = []
    synth_val: list[TrainVolume] = []
    cache = args.cache or out / "cache"
    contrasts = tuple(c.strip() for c in str(args.contrasts).split(",") if c.strip())
    if args.synth_train > 0:
        synth_train = build_synth(cache, [1000 + i for i in range(args.synth_train)], contrasts, args.workers)
        synth_val = build_synth(cache, [90000 + i for i in range(args.synth_val)], workers=args.workers)
    if args.synth_lumbar > 0:
        seeds = [LUMBAR_SEED0 + i for i in range(args.synth_lumbar)]
        synth_train += build_synth(cache, seeds, contrasts, args.workers, lumbar=True)
    data_minutes = (time.time() - t_data) / 60.0
    vols = synth_train + real + gmc
    if not vols:
        log.error("no training data")
        return 1
    probs = mix_probabilities(len(synth_train), len(real), len(gmc), args.real_weight, args.gmc_weight)
    cfg = PatchConfig(size=args.patch, p_cauda=args.p_cauda)
    val_rng = np.random.default_rng(12345)
    val_src = synth_val or real
    val = sample_batch(val_src, val_rng, 128, PatchConfig(size=args.patch))  # the same patches whatever --p-cauda

    device = E.select_device(args.device)
    wall_budget = device.type != "cpu"  # a GPU process's CPU time says nothing about its work
    model = UNet(1, 2, base=args.base, depth=args.depth, dims=2)
    if args.init_onnx is not None and not (out / "ckpt.pt").is_file():
        load_onnx_weights(torch, model, args.init_onnx)
        log.info("initialised from %s", args.init_onnx)
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    ckpt = out / "ckpt.pt"
    step, extra = load_checkpoint(ckpt, model, opt)
    for st in opt.state.values():  # a checkpoint is read onto the CPU
        for k, v in st.items():
            if torch.is_tensor(v) and k != "step":
                st[k] = v.to(device)
    batches = _batch_stream(vols, probs, cfg, args, step)
    elapsed = float(extra.get("elapsed_s", 0.0))
    best = float(extra.get("best_val_dice", -1.0))
    history: list[dict[str, float]] = list(extra.get("history", []))
    budget = args.minutes * 60.0
    log.info(
        "start step %d, elapsed %.0fs of %.0fs, %d train vols (%d real, %d challenge), %d val",
        step,
        elapsed,
        budget,
        len(vols),
        len(real),
        len(gmc),
        len(synth_val),
    )
    engine_budget = E.Budget(
        minutes=args.minutes,
        clock="wall" if wall_budget else "cpu",
        wall_minutes=args.max_wall_minutes,
        used_s=elapsed,
        wall_in_schedule=False,  # the cap only stops the run; the schedule follows --minutes
    )

    def validate_every(step_now: int, losses: list[float], b: E.Budget) -> None:
        nonlocal best
        if step_now % args.val_every == 0:
            vd = _val_dice(torch, model, val, device)
            history.append({"step": step_now, "elapsed_s": b.seconds(), "loss": losses[-1], "val_dice": vd})
            log.info("step %d %.0fs loss %.4f val soft dice %.4f", step_now, b.seconds(), losses[-1], vd)
            if vd > best:
                best = vd
                save_checkpoint(out / "best.pt", model, None, step_now, {"val_dice": vd})

    result = E.run_steps(
        E.Trainer(model, opt, functools.partial(_loss, torch), device),
        batches,
        engine_budget,
        lr=args.lr,
        step=step,
        checkpoint=E.Checkpointing(
            ckpt,
            every_s=args.ckpt_minutes * 60,
            extra=lambda _s, b: {"elapsed_s": b.seconds(), "best_val_dice": best, "history": history},
        ),
        log_every=args.val_every,
        floor=0.05,
        on_step=validate_every,
    )
    step, elapsed = result.step, engine_budget.seconds()
    vd = _val_dice(torch, model, val)  # the engine hands the model back on the CPU
    if vd > best:
        best = vd
        save_checkpoint(out / "best.pt", model, None, step, {"val_dice": vd})
    save_checkpoint(ckpt, model, opt, step, {"elapsed_s": elapsed, "best_val_dice": best, "history": history})
    log.info(
        "done: %d steps, %.1f %s min, best val soft dice %.4f",
        step,
        elapsed / 60,
        "wall" if wall_budget else "CPU",
        best,
    )
    model.cpu()
    if elapsed < budget:
        log.info("wall-clock cap reached before the CPU budget; exporting the best checkpoint so far")
    if args.no_export:
        return 0
    load_checkpoint(out / "best.pt", model)
    export(
        model,
        args,
        {
            "val_soft_dice_synthetic": best,
            "steps": step,
            "train_minutes": elapsed / 60.0,
            "data_minutes": data_minutes,
            "n_synth_train": len(synth_train),
            "n_synth_val": len(synth_val),
            "real": [v.name for v in real + gmc],
            "device": args.device,
            "budget_clock": "wall" if wall_budget else "process CPU",
        },
    )
    return 0


def export(model: Any, args: argparse.Namespace, info: dict[str, Any]) -> Path:
    import torch

    from neurospine.models.card import ModelCard
    from neurospine.nn.export import export_onnx

    model.eval()
    onnx_path = args.export_dir / f"{MODEL_NAME}.onnx"
    sha = export_onnx(model, torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0)), onnx_path)
    card = ModelCard(
        name=MODEL_NAME,
        version=str(args.version),
        task="cord",
        file=onnx_path.name,
        sha256=sha,
        description="Contrast-agnostic 2D U-Net on axial slices: soft (partial-volume) spinal cord and canal.",
        inputs={
            "fine_spacing_mm": 0.5,
            "coarse_spacing_mm": 1.0,
            "window_mm": 36.0,
            "threshold": 0.5,
            "slab_mm": 3.0,
            "input": "one axial slice (N,1,H,W), H and W multiples of 8, percentile 1-99 scaled per patch; "
            "axial slices thinner than slab_mm are averaged over a slab_mm slab centred on them first",
            "output": "logits (N,2,H,W); sigmoid gives fractions",
        },
        labels={"0": "spinal cord (soft fraction)", "1": "spinal canal (soft fraction)"},
        training_data=[
            {
                "name": "neurospine.synth synthetic cases",
                "licence": "generated here (Apache-2.0)",
                "n": str(info["n_synth_train"]),
            },
            {
                "name": "PAM50 T2w template with cord mask (an average of many subjects; pam50_small_template, "
                "from the "
                "sct_testing_data repository but not the errsm_30 test subject)",
                "licence": "MIT",
            },
            {"name": "SCT tutorial data sub-05 MT-on with silver cord mask", "licence": "MIT"},
        ]
        + (
            [
                {
                    "name": "Spinal Cord Grey Matter Challenge, axial T2*w with manual cord masks: training sessions "
                    + ", ".join(v.split("/")[-1] for v in info["real"] if v.startswith("gmchallenge"))
                    + "; 9418 (UCL) and 9709 (Milan, 2 sessions) held out (cord.data.GMC_TRAIN / GMC_HELDOUT)",
                    "licence": "CC0-1.0",
                    "n": str(sum(1 for v in info["real"] if v.startswith("gmchallenge"))),
                }
            ]
            if any(v.startswith("gmchallenge") for v in info["real"])
            else []
        ),
        metrics={
            "val_soft_dice_synthetic_heldout": round(float(info["val_soft_dice_synthetic"]), 4),
            "note": "sct_testing_data results: benchmarks/results/cord.json",
        },
        train_command=f"neurospine train cord --minutes {args.minutes:g} --synth-train {args.synth_train} "
        f"--synth-val {args.synth_val} --seed {args.seed}"
        + ("" if args.contrasts == ",".join(_CONTRASTS) else f" --contrasts {args.contrasts}")
        + (f" --real-weight {args.real_weight:g}" if args.real_weight != 0.25 else "")
        + (f" --gmc-weight {args.gmc_weight:g}" if args.gmc_weight > 0 else "")
        + (f" --edge-band-mm {args.edge_band_mm:g}" if args.edge_band_mm > 0 else "")
        + (f" --synth-lumbar {args.synth_lumbar}" if args.synth_lumbar > 0 else "")
        + (f" --p-cauda {args.p_cauda:g}" if args.p_cauda > 0 else "")
        + (f" --gmc-leave-out {args.gmc_leave_out}" if args.gmc_leave_out else "")
        + (f" --lr {args.lr:g}" if args.lr != 2e-3 else "")
        + (f" --init-onnx {args.init_onnx.name}" if args.init_onnx is not None else "")
        + (f" --version {args.version}" if args.version != VERSION else "")
        + (f" --batch {args.batch}" if args.batch != 16 else "")
        + (f" --device {args.device} --workers {args.workers}" if args.device != "cpu" else ""),
        train_cpu_minutes=round(float(info["train_minutes"]) + float(info["data_minutes"]), 1),
        created=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        notes=json.dumps({k: v for k, v in info.items() if k != "val_soft_dice_synthetic"}),
    )
    card_path = args.export_dir / f"{MODEL_NAME}.json"
    tmp = card_path.with_name(f".{card_path.name}.tmp")
    tmp.write_text(json.dumps(asdict(card), indent=2) + "\n", encoding="utf-8")
    tmp.replace(card_path)
    log.info("exported %s (%s) and %s", onnx_path, sha[:12], card_path)
    return onnx_path
