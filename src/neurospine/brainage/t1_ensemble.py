"""``neurospine train brainage-t1-ensemble``: several raw-T1 networks as one ONNX model (a deep ensemble).

Each member is a network trained by ``neurospine train brainage-t1`` on the *same* split (``--split-seed``)
with a different ``--seed``; all members standardise age with the same TRAIN mean and sd. The merged graph
feeds the same image and dropout masks to every member and concatenates their quantile functions along the
pass axis, so ``T`` masks give ``T x members`` passes and the predictive distribution is the equal-weight
mixture of the members' Monte-Carlo distributions (the runtime interface of a single model is unchanged).
The intervals are calibrated again on the VAL subjects; the card reports the TEST metrics of the ensemble.
Needs the ``onnx`` package (part of the ``train`` extra); torch is not needed.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from neurospine.brainage import quantiles as qmod

log = logging.getLogger(__name__)

MODEL_NAME = "brainage_t1"


def merge_parallel(paths: list[Path], out: Path) -> Path:
    """Write one ONNX model whose ``quantiles`` output stacks the members' outputs along axis 0."""
    import onnx
    from onnx import compose, helper

    if len(paths) < 2:
        raise ValueError("an ensemble needs at least two member models")
    members = [onnx.load(str(p)) for p in paths]
    first = members[0].graph
    input_names = [i.name for i in first.input]
    nodes: list[Any] = []
    initializers: list[Any] = []
    outputs: list[str] = []
    for k, model in enumerate(members):
        if [i.name for i in model.graph.input] != input_names or len(model.graph.output) != 1:
            raise ValueError(f"{paths[k]}: inputs {[i.name for i in model.graph.input]} do not match {input_names}")
        prefixed = compose.add_prefix(model, prefix=f"m{k}_")
        g = prefixed.graph
        nodes += [helper.make_node("Identity", [name], [f"m{k}_{name}"]) for name in input_names]
        nodes += list(g.node)
        initializers += list(g.initializer)
        outputs.append(g.output[0].name)
    nodes.append(helper.make_node("Concat", outputs, ["quantiles"], axis=0))
    out_info = helper.make_tensor_value_info(
        "quantiles", first.output[0].type.tensor_type.elem_type, ["passes_x_members", len(qmod.TAU_GRID)]
    )
    graph = helper.make_graph(nodes, "t1_ensemble", list(first.input), [out_info], initializer=initializers)
    merged = helper.make_model(graph, opset_imports=list(members[0].opset_import))
    merged.ir_version = members[0].ir_version
    onnx.checker.check_model(merged)
    tmp = out.with_name(f".{out.name}.tmp")
    onnx.save(merged, str(tmp))
    tmp.replace(out)
    return out


def _session(path: Path, threads: int) -> Any:
    from neurospine.inference.onnx import session_for_file

    return session_for_file(path, threads=threads)


def predictive(
    session: Any,
    images: list[np.ndarray],
    *,
    mu: float,
    sd: float,
    passes: int,
    seed: int = 12345,
    dropout_p: float = 0.2,
) -> qmod.Predictive:
    """Pooled predictive distributions (years) of preprocessed images (one run per image)."""
    rng = np.random.default_rng(seed)
    width = int(session.get_inputs()[1].shape[1])
    out = []
    for x in images:
        mask = (rng.random((passes, width)) >= dropout_p).astype(np.float32)
        (q,) = session.run(None, {"image": x[None, None].astype(np.float32), "mask": mask})
        out.append(np.asarray(q, dtype=np.float64) * sd + mu)
    return qmod.Predictive.from_passes(np.stack(out, axis=1))


def _parser() -> argparse.ArgumentParser:
    from neurospine.brainage.training_t1 import DEFAULT_DATA

    p = argparse.ArgumentParser(prog="neurospine train brainage-t1-ensemble", description=__doc__.split("\n\n")[0])
    p.add_argument("--members", type=Path, nargs="+", required=True, help="folders with brainage_t1.onnx + card")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with ages.csv and t1/ (ixi_t1_2mm)")
    p.add_argument("--export", type=Path, required=True, help="folder for the ensemble's onnx/card/calibration")
    p.add_argument(
        "--split-seed",
        type=int,
        default=0,
        help="seed of the TRAIN/VAL/TEST split (keep 0, as the members were trained)",
    )
    p.add_argument("--mc", type=int, default=50, help="Monte-Carlo masks per member for evaluation")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    from neurospine.brainage.t1_model import export_card
    from neurospine.brainage.t1_preprocess import preprocess_t1
    from neurospine.brainage.training_t1 import (
        heldout_metrics,
        pinball_years,
        read_ages,
        save_calibration,
        split_subjects,
    )
    from neurospine.io import load_volume

    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    t0 = time.process_time()
    cards = [json.loads((m / f"{MODEL_NAME}.json").read_text(encoding="utf-8")) for m in args.members]
    mus = {round(float(c["inputs"]["age_mean"]), 6) for c in cards}
    sds = {round(float(c["inputs"]["age_sd"]), 6) for c in cards}
    if len(mus) != 1 or len(sds) != 1:
        raise SystemExit("members were trained on different splits (age_mean/age_sd differ); use one --split-seed")
    mu, sd = float(cards[0]["inputs"]["age_mean"]), float(cards[0]["inputs"]["age_sd"])
    drop = float(cards[0]["inputs"].get("dropout_p", 0.2))
    if any(float(c["inputs"].get("dropout_p", 0.2)) != drop for c in cards):
        raise SystemExit("members use different dropout rates; merge networks trained with the same recipe")
    rows = read_ages(args.data)
    ages = np.array([r["age"] for r in rows])
    split = split_subjects(ages, args.split_seed)
    va, te, tr = split["val"], split["test"], split["train"]
    if abs(float(ages[tr].mean()) - mu) > 1e-6 or abs(float(ages[tr].std()) - sd) > 1e-6:
        raise SystemExit(
            f"the members' age standardisation ({mu:.4f}, {sd:.4f}) is not that of the TRAIN subjects of split seed "
            f"{args.split_seed}: pass the --split-seed the members were trained with"
        )
    load = {i: preprocess_t1(load_volume(rows[i]["file"])) for i in [*va.tolist(), *te.tolist()]}
    args.export.mkdir(parents=True, exist_ok=True)
    onnx_path = merge_parallel([m / f"{MODEL_NAME}.onnx" for m in args.members], args.export / f"{MODEL_NAME}.onnx")
    session = _session(onnx_path, args.threads)
    p_val = predictive(session, [load[i] for i in va], mu=mu, sd=sd, passes=args.mc, dropout_p=drop)
    members_val = [
        pinball_years(
            ages[va],
            predictive(
                _session(m / f"{MODEL_NAME}.onnx", args.threads),
                [load[i] for i in va],
                mu=mu,
                sd=sd,
                passes=args.mc,
                dropout_p=drop,
            ),
        )
        for m in args.members
    ]
    val_pinball = pinball_years(ages[va], p_val)
    log.info("VAL pinball: ensemble %.3f y, members %s", val_pinball, [round(v, 3) for v in members_val])
    conf = qmod.ConformalTable(ages[va], p_val.quantiles, p_val.sd)
    calib_path = save_calibration(args.export, conf, mu, sd)
    p_test = predictive(session, [load[i] for i in te], mu=mu, sd=sd, passes=args.mc, dropout_p=drop)
    metrics = heldout_metrics(ages, split, p_test, conf, split_seed=args.split_seed)
    metrics.update(
        ensemble_members=len(args.members),
        val_pinball_years_ensemble=val_pinball,
        val_pinball_years_members=members_val,
        mc_passes=args.mc * len(args.members),
    )
    log.info("TEST metrics %s", json.dumps(metrics))
    command = (
        " && ".join(c["train_command"] for c in cards)
        + " && neurospine train brainage-t1-ensemble --members "
        + " ".join(f"<export of run {k + 1}>" for k in range(len(cards)))
        + f" --export <folder> --split-seed {args.split_seed} --mc {args.mc}"
    )
    export_card(
        args.export,
        onnx_path,
        calib_path,
        metrics=metrics,
        age_mean=mu,
        age_sd=sd,
        train_cpu_minutes=sum(float(c["train_cpu_minutes"]) for c in cards) + (time.process_time() - t0) / 60.0,
        epochs=0,
        best_epoch=0,
        train_ids=[rows[i]["id"] for i in tr],
        width=int(cards[0]["inputs"].get("first_stage_channels", 8)),
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        recipe="lowres",
        train_command=command,
        swa_epochs=0,
        members=len(args.members),
    )
    return 0
