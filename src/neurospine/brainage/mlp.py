"""A small multilayer perceptron with dropout and a monotone quantile head, in numpy (no torch).

``x -> [Linear -> ReLU -> Dropout] * L -> Linear -> monotone head`` (first quantile + cumulative
softplus increments, see :mod:`neurospine.brainage.quantiles`). Dropout uses explicit masks so that the
backward pass and the gradient check are exact. Trained with Adam on the composite pinball loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from neurospine.brainage import quantiles as qmod

FloatArray = npt.NDArray[np.float64]
Params = dict[str, FloatArray]


def init_params(n_in: int, hidden: tuple[int, ...], n_out: int, rng: np.random.Generator) -> Params:
    """He-initialised weights; the head starts near the standard-normal quantiles (targets are z-scores)."""
    sizes = [n_in, *hidden, n_out]
    p: Params = {}
    for i in range(len(sizes) - 1):
        p[f"W{i}"] = rng.normal(0.0, np.sqrt(2.0 / sizes[i]), size=(sizes[i], sizes[i + 1]))
        p[f"b{i}"] = np.zeros(sizes[i + 1])
    last = len(sizes) - 2
    p[f"W{last}"] *= 0.1
    # raw bias so that the head outputs roughly N(0,1) quantiles at TAU_GRID
    from statistics import NormalDist

    z = np.array([NormalDist().inv_cdf(float(t)) for t in qmod.TAU_GRID])
    inc = np.maximum(np.diff(z), 1e-3)
    p[f"b{last}"] = np.concatenate([[z[0]], np.log(np.expm1(inc))])
    return p


def n_layers(p: Params) -> int:
    return sum(1 for k in p if k.startswith("W"))


def dropout_masks(p: Params, n: int, rate: float, rng: np.random.Generator | None) -> list[FloatArray]:
    """Inverted-dropout masks (values 0 or 1/(1-rate)) for each hidden layer; all ones when ``rng`` is None."""
    masks = []
    for i in range(n_layers(p) - 1):
        width = p[f"W{i}"].shape[1]
        if rng is None or rate <= 0:
            masks.append(np.ones((n, width)))
        else:
            masks.append((rng.random((n, width)) >= rate) / (1.0 - rate))
    return masks


@dataclass
class Cache:
    inputs: list[FloatArray] = field(default_factory=list)  # input of each Linear
    pre: list[FloatArray] = field(default_factory=list)  # pre-activation of hidden layers
    masks: list[FloatArray] = field(default_factory=list)
    raw: FloatArray | None = None


def forward(p: Params, x: FloatArray, masks: list[FloatArray]) -> tuple[FloatArray, Cache]:
    """Monotone quantiles ``(n, K)`` and the cache for :func:`backward`."""
    cache = Cache(masks=masks)
    h = x
    L = n_layers(p)
    for i in range(L - 1):
        cache.inputs.append(h)
        z = h @ p[f"W{i}"] + p[f"b{i}"]
        cache.pre.append(z)
        h = np.maximum(z, 0.0) * masks[i]
    cache.inputs.append(h)
    raw = h @ p[f"W{L - 1}"] + p[f"b{L - 1}"]
    cache.raw = raw
    return qmod.monotone_head(raw), cache


def backward(p: Params, cache: Cache, grad_q: FloatArray) -> Params:
    """Gradients of the loss w.r.t. every parameter, given d loss / d quantiles."""
    assert cache.raw is not None
    L = n_layers(p)
    g: Params = {}
    d = qmod.monotone_head_backward(cache.raw, grad_q)
    for i in range(L - 1, -1, -1):
        g[f"W{i}"] = cache.inputs[i].T @ d
        g[f"b{i}"] = d.sum(axis=0)
        if i > 0:
            dh = d @ p[f"W{i}"].T
            d = dh * cache.masks[i - 1] * (cache.pre[i - 1] > 0)
    return g


def composite_pinball(q: FloatArray, y: FloatArray) -> tuple[float, FloatArray]:
    """Mean pinball loss over subjects and the grid levels, and its gradient w.r.t. ``q``."""
    tau = qmod.TAU_GRID[None, :]
    yy = y[:, None]
    loss = float(qmod.pinball_loss(yy, q, tau).mean())
    grad = qmod.pinball_grad(yy, q, tau) / q.size
    return loss, grad


@dataclass
class Adam:
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    t: int = 0
    m: Params = field(default_factory=dict)
    v: Params = field(default_factory=dict)

    def step(self, p: Params, g: Params) -> None:
        self.t += 1
        for k in p:
            grad = g[k] + (self.weight_decay * p[k] if k.startswith("W") else 0.0)
            if k not in self.m:
                self.m[k] = np.zeros_like(p[k])
                self.v[k] = np.zeros_like(p[k])
            self.m[k] = self.beta1 * self.m[k] + (1 - self.beta1) * grad
            self.v[k] = self.beta2 * self.v[k] + (1 - self.beta2) * grad * grad
            mh = self.m[k] / (1 - self.beta1**self.t)
            vh = self.v[k] / (1 - self.beta2**self.t)
            p[k] -= self.lr * mh / (np.sqrt(vh) + self.eps)
