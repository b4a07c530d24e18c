"""What every modality provides to the trainer: data, a frozen base model, a loss and a metric."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..losses import LOSSES, accuracy
from ..module import Module

Inputs = Any  # an array, or a tuple of arrays (multimodal)


def take(x: Inputs, idx) -> Inputs:
    """Rows `idx` of an input array or of each array in a tuple."""
    return tuple(a[idx] for a in x) if isinstance(x, tuple) else x[idx]


def num_rows(x: Inputs) -> int:
    return len(x[0]) if isinstance(x, tuple) else len(x)


def read_only(*arrays):
    """Tasks are shared between sessions (cached): make their arrays immutable."""
    for a in arrays:
        for part in (a if isinstance(a, tuple) else (a,)):
            part.flags.writeable = False


@dataclass
class Task:
    """A dataset pair and a frozen base model for one modality.

    `build_model()` returns a fresh copy of the base (architecture + trained weights), so
    every run starts from the same place and no run can change another's base.
    """

    modality: str
    build_model: Callable[[], Module]
    x_train: Inputs
    y_train: np.ndarray
    x_val: Inputs
    y_val: np.ndarray
    loss: str  # a key of losses.LOSSES
    metric: str | None  # "accuracy", "bpc" or None
    targets: tuple[str, ...]  # default LoRA target patterns
    description: str  # one sentence: base -> adaptation
    extras: dict = field(default_factory=dict)  # what the UI shows: true dW, class names, vocabulary, ...
    floor: Callable[[int], dict] | None = None  # rank -> theory floors, where theory has one

    def __post_init__(self):
        read_only(self.x_train, self.y_train, self.x_val, self.y_val)

    @property
    def n_train(self) -> int:
        return num_rows(self.x_train)

    def evaluate(self, model: Module, x: Inputs, y: np.ndarray, batch: int = 4096) -> dict[str, float]:
        """Loss and metric of `model` on (x, y), in eval mode, in batches (bounded memory)."""
        was_training = model.training
        model.eval()
        loss_fn = LOSSES[self.loss]
        n = len(y)
        total, correct = 0.0, 0.0
        for start in range(0, n, batch):
            xb, yb = take(x, slice(start, start + batch)), y[start: start + batch]
            out = model.forward(xb)
            total += loss_fn(out, yb)[0] * len(yb)
            if self.metric in ("accuracy", "bpc") and self.loss == "cross_entropy":
                correct += accuracy(out, yb) * len(yb)
        model.train(was_training)
        result = {"loss": total / n}
        if self.metric == "accuracy":
            result["accuracy"] = correct / n
        elif self.metric == "bpc":
            result["bpc"] = result["loss"] / np.log(2.0)  # nats -> bits per character
        return result

    def base_scores(self) -> dict[str, float]:
        """The frozen base on the target task's validation set: the 'before' number."""
        return self.evaluate(self.build_model(), self.x_val, self.y_val)


def fit_base(model: Module, loss: str, x: Inputs, y: np.ndarray, *, steps: int, lr: float, batch_size: int,
             seed: int = 0) -> Module:
    """Train every parameter of a fresh base model with Adam (deterministic for a seed).

    Used once per base: its result is committed under data/bases/ by scripts/build_bases.py,
    or made on first use when no committed file fits the options.
    """
    from ..optim import Adam  # here, not at the top: optim does not depend on tasks

    model.set_trainable(True)
    params = model.trainable_parameters()
    optimizer = Adam(params, lr=lr)
    loss_fn = LOSSES[loss]
    rng = np.random.default_rng(seed)
    n = num_rows(x)
    for _ in range(steps):
        idx = rng.integers(0, n, batch_size)
        optimizer.zero_grad()
        _, d_out = loss_fn(model.forward(take(x, idx)), y[idx])
        model.backward(d_out)
        optimizer.step()
    return model


def rounded_state(model: Module) -> dict[str, np.ndarray]:
    """The model's weights rounded to float32: what a base file stores, so trained == loaded."""
    return {name: p.value.astype(np.float32) for name, p in model.named_parameters()}
