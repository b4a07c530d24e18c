"""Losses: each returns the mean loss over the batch and its gradient in one pass."""
from __future__ import annotations

import numpy as np


def mse_loss(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean squared error over every element (torch.nn.MSELoss, reduction="mean")."""
    diff = pred - target  # (batch, d_out)
    loss = float(np.vdot(diff, diff)) / diff.size
    return loss, diff * (2.0 / diff.size)


def cross_entropy_loss(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy in nats, mean over the batch (torch.nn.CrossEntropyLoss).

    logits (batch, classes), labels (batch,) int. The gradient is (softmax - onehot) / batch.
    """
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)  # stable: the largest logit is 0
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    loss = float(np.log(total).sum() - shifted[rows, labels].sum()) / n
    grad = exp / total  # softmax, (batch, classes)
    grad[rows, labels] -= 1.0
    grad /= n
    return loss, grad


LOSSES = {"mse": mse_loss, "cross_entropy": cross_entropy_loss}


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(axis=1) == labels).mean())
