"""Closed forms for the best a rank-r update can do: the lines drawn under the curves.

Eckart-Young: the best rank-r approximation of a matrix keeps its top r singular
directions, and its squared error is the sum of the remaining s_i^2.
Reduced-rank regression: on a finite sample, the best rank-r coefficient matrix
is the least-squares fit projected onto the top r right singular vectors of its
fitted values.
"""
from __future__ import annotations

import numpy as np


def eckart_young_tail(singular_values: np.ndarray, rank: int) -> float:
    """sum_{i >= rank} s_i^2: the squared Frobenius error of the best rank-`rank` approximation."""
    s = np.asarray(singular_values, dtype=float)
    return float(np.sum(s[rank:] ** 2))


def reduced_rank_fit(x: np.ndarray, y: np.ndarray, rank: int) -> np.ndarray:
    """argmin over rank-`rank` D of ||y - x D^T||_F^2, as D (d_out, d_in). Needs x of full column rank."""
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)  # (d_in, d_out), the unconstrained optimum
    _, _, vt = np.linalg.svd(x @ coef, full_matrices=False)
    keep = vt[:rank].T @ vt[:rank]  # projector onto the top output directions, (d_out, d_out)
    return (coef @ keep).T


def reduced_rank_loss(x: np.ndarray, y: np.ndarray, rank: int) -> float:
    """The exact minimum of mean((y - x D^T)^2) over rank-`rank` D."""
    d = reduced_rank_fit(x, y, rank)
    residual = y - x @ d.T
    return float(np.vdot(residual, residual) / residual.size)


def two_branch_rank_loss(x_a: np.ndarray, x_b: np.ndarray, y: np.ndarray, rank: int, sweeps: int = 50) -> float:
    """min of mean((y - x_a Da^T - x_b Db^T)^2) with rank(Da), rank(Db) <= rank, by block coordinate descent.

    Each sweep solves one branch exactly given the other, so the loss never rises; for the toy's
    nearly independent inputs it settles in a few sweeps.
    """
    d_b = np.zeros((y.shape[1], x_b.shape[1]))
    for _ in range(sweeps):
        d_a = reduced_rank_fit(x_a, y - x_b @ d_b.T, rank)
        d_b = reduced_rank_fit(x_b, y - x_a @ d_a.T, rank)
    residual = y - x_a @ d_a.T - x_b @ d_b.T
    return float(np.vdot(residual, residual) / residual.size)
