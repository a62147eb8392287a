"""How well a small classifier tells training slices of each synthetic source from real MRI slices.

The synthetic-to-real gap of the spine training data (issue 17, item 2), measured before and after real label
maps were painted into training: sagittal slices near the middle of each volume, on the model grid (PIR, 1 mm
in-plane, intensities normalised as the network sees them), each described by 26 image statistics (intensity
histogram, gradient and Laplacian statistics, autocorrelation at 1-8 mm, spectral slope). A logistic
regression tells one source from the real slices; the score is its area under the ROC curve in 5-fold
cross-validation grouped by volume (0.5 = indistinguishable, 1.0 = always told apart).

Sources: ``real`` = VB3/VB2/IVD training cases (what the network trains on); ``procedural`` = the synthetic
engine as the trainer draws it; ``painted`` = real label maps painted SynthSeg-style (spine.train_sources).

Run: ``python -m benchmarks.synth_gap [--n 30]``.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.common import SHARED_DATA, write_results

log = logging.getLogger(__name__)
F = npt.NDArray[np.float64]


def slice_features(img: npt.NDArray[np.float32]) -> F:
    """26 statistics of one normalised 2D slice (values in [0, 1])."""
    from scipy import ndimage

    x = np.asarray(img, dtype=np.float64)
    hist = np.histogram(x, bins=12, range=(0.0, 1.0))[0] / x.size
    gy, gx = np.gradient(x)
    grad = np.hypot(gx, gy)
    lap = ndimage.laplace(x)
    feats = [*hist, float(x.mean()), float(x.std()), float(grad.mean()), float(np.percentile(grad, 90))]
    feats += [float(np.median(np.abs(lap))), float(lap.std()), float((grad < 0.01).mean())]
    xc = x - x.mean()
    var = float((xc * xc).mean()) + 1e-12
    for lag in (1, 2, 4, 8):
        feats.append(float((xc[lag:, :] * xc[:-lag, :]).mean() + (xc[:, lag:] * xc[:, :-lag]).mean()) / (2 * var))
    spec = np.abs(np.fft.rfft2(xc)) ** 2
    fy = np.fft.fftfreq(x.shape[0])[:, None]
    fx = np.fft.rfftfreq(x.shape[1])[None, :]
    rad = np.hypot(fy, fx)
    band = (rad > 0.02) & (rad < 0.45)
    slope = np.polyfit(np.log(rad[band]), np.log(spec[band] + 1e-12), 1)[0]
    feats += [float(slope), float(spec[rad >= 0.25].sum() / (spec[band].sum() + 1e-12)), float(x.max() - x.min())]
    return np.asarray(feats, dtype=np.float64)


def case_slices(image: npt.NDArray[np.uint8], n: int = 3) -> list[npt.NDArray[np.float32]]:
    """``n`` sagittal slices around the middle of a slice-major (R, P, I) volume."""
    r_mid = image.shape[0] // 2
    picks = sorted({int(np.clip(r_mid + d, 0, image.shape[0] - 1)) for d in range(-n // 2 + 1, n // 2 + 1)})
    return [image[r].astype(np.float32) / 255.0 for r in picks]


def grouped_auc(x_real: F, g_real: list[str], x_other: F, g_other: list[str], folds: int = 5, seed: int = 0) -> float:
    """Cross-validated ROC AUC of a logistic regression (folds split by volume)."""
    x = np.vstack([x_real, x_other])
    y = np.r_[np.zeros(len(x_real)), np.ones(len(x_other))]
    groups = np.array(g_real + g_other)
    uniq = np.unique(groups)
    rng = np.random.default_rng(seed)
    fold_of = dict(zip(uniq, rng.permutation(len(uniq)) % folds, strict=True))
    fold = np.array([fold_of[g] for g in groups])
    scores = np.zeros(len(y))
    for k in range(folds):
        tr, te = fold != k, fold == k
        if not te.any():
            continue
        mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-9
        w = _fit_logistic((x[tr] - mu) / sd, y[tr])
        scores[te] = ((x[te] - mu) / sd) @ w[:-1] + w[-1]
    return _auc(scores, y)


def _fit_logistic(x: F, y: F, l2: float = 1.0, iters: int = 300) -> F:
    """L2-regularised logistic regression by Newton steps (weights, then bias)."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(xb.shape[1])
    reg = np.full(xb.shape[1], l2)
    reg[-1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w, -30, 30)))
        grad = xb.T @ (p - y) + reg * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def _auc(scores: F, y: F) -> float:
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    n_pos, n_neg = float(y.sum()), float(len(y) - y.sum())
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def main(argv: list[str] | None = None) -> int:
    from neurospine.spine import data as D
    from neurospine.spine.train_sources import PaintPool, load_labelmap_sources
    from neurospine.spine.training import SYNTH_LEVELS, synth_case

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=30, help="volumes per synthetic source")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    t0 = time.time()
    rng = np.random.default_rng(args.seed)
    feats: dict[str, tuple[list[F], list[str]]] = {"real": ([], []), "procedural": ([], []), "painted": ([], [])}

    def add(source: str, name: str, image: npt.NDArray[np.uint8]) -> None:
        for s in case_slices(image):
            feats[source][0].append(slice_features(s))
            feats[source][1].append(name)

    for case in D.train_cases(SHARED_DATA, nothing_below_l5=True):
        add("real", case.name, case.image)
    for i in range(args.n):
        seed = 900_000 + args.seed * 1000 + i
        case = synth_case(seed, rng, 1, SYNTH_LEVELS)
        add("procedural", case.name, case.image)
    paint = PaintPool(load_labelmap_sources(SHARED_DATA), 950_000 + args.seed * 1000, [])
    for _ in range(args.n):
        case = paint._draw(rng)
        add("painted", case.name, case.image)
    x_real = np.vstack(feats["real"][0])
    rows: dict[str, Any] = {}
    for source in ("procedural", "painted"):
        x_o = np.vstack(feats[source][0])
        auc = grouped_auc(x_real, feats["real"][1], x_o, feats[source][1], seed=args.seed)
        rows[source] = {"auc_vs_real": round(auc, 3), "slices": len(x_o), "volumes": len(set(feats[source][1]))}
        log.info("%s vs real: AUC %.3f", source, auc)
    payload = {
        "real_slices": len(x_real),
        "real_volumes": len(set(feats["real"][1])),
        "sources": rows,
        "features": 26,
        "classifier": "L2 logistic regression, 5-fold CV grouped by volume",
        "seconds": round(time.time() - t0, 1),
    }
    md = [
        "# Synthetic-to-real gap of the spine training sources",
        "",
        "A logistic regression on 26 image statistics of mid-sagittal slices tells each source from the real",
        "training slices (VB3/VB2/IVD); ROC AUC in 5-fold cross-validation grouped by volume (0.5 = cannot tell",
        "them apart). `python -m benchmarks.synth_gap`.",
        "",
        f"Real: {payload['real_slices']} slices of {payload['real_volumes']} volumes.",
        "",
        "| source | volumes | slices | AUC vs real |",
        "|---|---|---|---|",
    ]
    for source, r in rows.items():
        md.append(f"| {source} | {r['volumes']} | {r['slices']} | {r['auc_vs_real']:.3f} |")
    write_results("synth_gap", payload, threads=1, markdown="\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
