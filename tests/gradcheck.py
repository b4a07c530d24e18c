"""Central finite differences against the hand-written backward passes (float64)."""
from __future__ import annotations

import numpy as np


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), np.max(np.abs(b)), 1e-12))


def numeric_grad(f, array: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f() / d array by central differences, perturbing `array` in place."""
    grad = np.zeros_like(array)
    flat, gflat = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return grad


def check_module(module, inputs, *, seed: int = 0, reseed=None, loss=None) -> dict[str, float]:
    """Relative error of every trainable param's gradient and of the input gradient(s).

    A frozen param's entry is its largest |grad|, which must be 0.

    The scalar checked is sum(out * R) for a fixed random R, or `loss(out)` -> (value, dout).
    `reseed()` is called before every forward (fixes dropout masks).
    """
    rng = np.random.default_rng(seed)
    out = module.forward(inputs)
    weights = rng.standard_normal(out.shape)
    if loss is None:
        def loss(o):
            return float(np.sum(o * weights)), weights

    def f():
        if reseed:
            reseed()
        return loss(module.forward(inputs))[0]

    module.zero_grad()
    if reseed:
        reseed()
    _, dout = loss(module.forward(inputs))
    d_inputs = module.backward(dout)
    # trainable params must match the numbers; frozen ones must get no gradient at all
    errors = {name: (_rel_err(p.grad, numeric_grad(f, p.value)) if p.trainable else float(np.abs(p.grad).max()))
              for name, p in module.named_parameters()}
    arrays = inputs if isinstance(inputs, tuple) else (inputs,)
    grads = d_inputs if isinstance(d_inputs, tuple) else (d_inputs,)
    for i, (x, dx) in enumerate(zip(arrays, grads)):
        if dx is not None and np.issubdtype(x.dtype, np.floating):
            errors[f"input{i}"] = _rel_err(dx, numeric_grad(f, x))
    return errors
