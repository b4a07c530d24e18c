"""Synthetic regression with a known answer, so theory can be drawn under the curve.

    y = x (W0 + dW*)^T + noise,   x ~ N(0, I),   dW* = U diag(s) V^T of rank k,   noise ~ N(0, sigma^2)

A rank-r adapter can at best remove the top r singular directions of dW*. With
x ~ N(0, I) the expected loss of an update D is ||D - dW*||_F^2 / d_out + sigma^2,
so by Eckart-Young the best rank-r update leaves the tail of the spectrum:

    population floor(r) = sum_{i >= r} s_i^2 / d_out + sigma^2

On a finite training set the exact optimum is reduced-rank regression: the
least-squares fit projected onto its top-r output directions.
"""
from __future__ import annotations

import numpy as np

from ..layers import Linear
from ..models import Sequential
from ..theory import eckart_young_tail, reduced_rank_loss
from .base import Task

DATA_STREAM = 0  # np.random.default_rng([seed, DATA_STREAM]) draws the data


def true_update(d_in: int, d_out: int, rank: int, decay: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """dW* = U diag(s) V^T with orthonormal U, V and s_i ∝ decay**i, scaled so ||dW*||_F^2 = d_out.

    That scale makes the loss of doing nothing about 1 + sigma^2 whatever the sizes.
    """
    u, _ = np.linalg.qr(rng.standard_normal((d_out, rank)))
    v, _ = np.linalg.qr(rng.standard_normal((d_in, rank)))
    s = decay ** np.arange(rank)
    s *= np.sqrt(d_out / np.sum(s * s))
    return (u * s) @ v.T, s


def base_weight(kind: str, d_in: int, d_out: int, rng) -> np.ndarray:
    if kind == "identity":
        return np.eye(d_out, d_in)
    if kind == "random":
        return rng.standard_normal((d_out, d_in)) / np.sqrt(d_in)
    return np.zeros((d_out, d_in))


def build(c) -> Task:
    rng = np.random.default_rng([c.seed, DATA_STREAM])
    dtype = np.dtype(c.dtype)
    d_in, d_out, n_train = c.syn_d_in, c.syn_d_out, c.syn_samples
    n_val = max(n_train // 4, 64)
    w0 = base_weight(c.syn_base, d_in, d_out, rng)
    dw_true, spectrum = true_update(d_in, d_out, c.syn_true_rank, c.syn_decay, rng)
    x = rng.standard_normal((n_train + n_val, d_in))
    y = x @ (w0 + dw_true).T + c.syn_noise * rng.standard_normal((n_train + n_val, d_out))
    x_train, y_train = x[:n_train], y[:n_train]

    def build_model():
        model = Sequential(fc1=Linear(d_in, d_out, bias=False, dtype=dtype))
        model.fc1.weight.value[...] = w0
        model.fc1.need_input_grad = False  # the input is data
        model.head_paths = ("fc1",)
        return model

    train_residual = y_train - x_train @ w0.T
    noise_floor = c.syn_noise ** 2

    def floor(rank: int | None) -> dict:
        """Floors for a rank-`rank` update; None means full rank (full fine-tuning)."""
        rank = min(d_in, d_out) if rank is None else min(rank, d_in, d_out)
        return {"population": eckart_young_tail(spectrum, rank) / d_out + noise_floor, "noise": noise_floor,
                "train_optimum": reduced_rank_loss(x_train, train_residual, rank)}

    return Task(
        modality="synthetic", build_model=build_model,
        x_train=x_train.astype(dtype), y_train=y_train.astype(dtype),
        x_val=x[n_train:].astype(dtype), y_val=y[n_train:].astype(dtype),
        loss="mse", metric=None, targets=("fc1",),
        description=(f"Learn a rank-{c.syn_true_rank} update dW* of a {d_out}x{d_in} frozen map "
                     f"({c.syn_base} W0) from {n_train} noisy samples."),
        extras={"true_delta": dw_true, "true_singular_values": spectrum, "w0": w0, "noise_floor": noise_floor},
        floor=floor,
    )
