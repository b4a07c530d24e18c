"""The training loop, one step at a time, so a UI can stream it.

    run = Run(config)             # data, base model, adapters, optimizer: all from the config
    for m in run:                 # or run.step(50), or run.run_for(seconds=0.15)
        print(m.step, m.train_loss)

A run is deterministic: the data, the adapter init, the batches and the dropout
masks each come from their own generator seeded by `(config.seed, stream)`, and
batches and masks depend only on the step number, so a run resumed from a
checkpoint continues exactly as if it had never stopped.
"""
from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass, fields

import numpy as np

from .config import Config
from .errors import CheckpointError
from .losses import LOSSES
from .models import lora_layers, set_method
from .optim import clip_grad_norm, grad_norm, make_optimizer, make_schedule
from .tasks import Task, build_task, take

try:  # one BLAS thread: small steps lose badly when the second core is busy (server, other sessions)
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - optional; training is still correct without it
    threadpool_limits = None

INIT_STREAM, BATCH_STREAM, DROPOUT_STREAM = 1, 2, 3
DIVERGENCE_FACTOR = 100.0  # a training loss this many times the first one means the run blew up
MAX_EVAL_ROWS = 2048  # validation is measured on at most this many rows, so it stays cheap


@dataclass(frozen=True)
class StepMetrics:
    step: int  # updates done so far (1 after the first)
    train_loss: float  # loss of the batch, before the update
    lr: float  # learning rate used for the update
    grad_norm: float  # global gradient norm, before clipping
    time: float  # seconds spent training so far
    val_loss: float = math.nan  # NaN on steps without evaluation
    val_metric: float = math.nan  # accuracy, bits per character, or NaN


class History:
    """The metrics of every step, as growable NumPy columns (cheap to append, plotted without copies)."""

    COLUMNS = tuple(f.name for f in fields(StepMetrics))

    def __init__(self):
        self._size = 0
        self._data = {name: np.empty(1024, dtype=np.int64 if name == "step" else float) for name in self.COLUMNS}

    def append(self, m: StepMetrics) -> None:
        if self._size == len(self._data["step"]):  # grow by doubling: amortised O(1) per step
            self._data = {name: np.resize(column, 2 * len(column)) for name, column in self._data.items()}
        for name in self.COLUMNS:
            self._data[name][self._size] = getattr(m, name)
        self._size += 1

    def __len__(self) -> int:
        return self._size

    def array(self, name: str) -> np.ndarray:
        """A read-only view of one column (valid until the next append)."""
        view = self._data[name][: self._size]
        view.flags.writeable = False
        return view

    def last(self, name: str) -> float:
        """The last finite value of a column (NaN if none): e.g. the latest validation loss."""
        column = self._data[name][: self._size]
        finite = np.flatnonzero(~np.isnan(column))
        return float(column[finite[-1]]) if finite.size else math.nan

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.COLUMNS)
        for row in zip(*(self.array(name).tolist() for name in self.COLUMNS)):
            writer.writerow([repr(v) if isinstance(v, float) else v for v in row])
        return out.getvalue()

    @classmethod
    def from_csv(cls, text: str) -> "History":
        """Parse `to_csv` output; raises CheckpointError on anything else. Floats round-trip exactly (repr)."""
        history = cls()
        try:
            rows = list(csv.reader(io.StringIO(text)))
        except csv.Error as error:
            raise CheckpointError(f"the history CSV cannot be read: {error}.") from None
        if not rows or tuple(rows[0]) != cls.COLUMNS:
            raise CheckpointError(f"the history CSV must start with the header {','.join(cls.COLUMNS)}.")
        for number, row in enumerate(rows[1:], start=2):
            try:
                if len(row) != len(cls.COLUMNS):
                    raise ValueError
                history.append(StepMetrics(int(row[0]), *(float(v) for v in row[1:])))
            except ValueError:
                raise CheckpointError(f"the history CSV has a malformed line {number}.") from None
        return history


class Run:
    """One experiment: builds the task, the model, the optimizer, and trains on demand.

    `status` is "ready", "running", "done" or "diverged"; `message` explains a stop.
    """

    def __init__(self, config: Config, task: Task | None = None):
        self.config = c = config
        self.task = task if task is not None else build_task(config)
        self.model = self.task.build_model()
        targets = c.target_patterns() or list(self.task.targets)
        self.trained_paths = set_method(
            self.model, c.method, targets=targets, r=c.rank, alpha=c.alpha, use_rslora=c.use_rslora,
            dropout=c.dropout, init=c.init, rng=np.random.default_rng([c.seed, INIT_STREAM]))
        self.params = self.model.trainable_parameters()
        self.optimizer = make_optimizer(c.optimizer, self.params, c.lr, weight_decay=c.weight_decay,
                                        momentum=c.momentum, loraplus_ratio=c.loraplus_ratio)
        self.schedule = make_schedule(c.schedule, c.steps, c.warmup_steps)
        self.loss_fn = LOSSES[self.task.loss]
        self.history = History()
        self.step_count = 0
        self.train_time = 0.0
        self.start_loss = math.nan
        self.status, self.message = "ready", ""
        self._perm, self._perm_epoch = None, -1
        self._floor = None
        self._lora = [layer for _, layer in lora_layers(self.model)]
        n_val = min(len(self.task.y_val), MAX_EVAL_ROWS)
        self._val = (take(self.task.x_val, slice(0, n_val)), self.task.y_val[:n_val])

    # -- state ---------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.status in ("done", "diverged")

    def theory_floor(self) -> dict | None:
        """Loss floors that theory predicts for this rank (synthetic and the toy), else None.

        Computed once per run (a least-squares fit and an SVD): a live chart asks for it every frame.
        """
        if self.task.floor is None:
            return None
        if self._floor is None:
            self._floor = self.task.floor(self.config.rank if self.config.method == "lora" else None)
        return dict(self._floor)

    # -- training --------------------------------------------------------------
    def _batch(self, step: int):
        """Rows for 0-based `step`: a fresh permutation per epoch, drawn from (seed, epoch) alone."""
        n, size = self.task.n_train, self.config.batch_size
        if size >= n:
            return self.task.x_train, self.task.y_train
        per_epoch = n // size  # the last partial batch of an epoch is dropped, as drop_last=True
        epoch, i = divmod(step, per_epoch)
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.config.seed, BATCH_STREAM, epoch]).permutation(n)
            self._perm_epoch = epoch
        idx = self._perm[i * size:(i + 1) * size]
        return take(self.task.x_train, idx), self.task.y_train[idx]

    def _one_step(self) -> StepMetrics | None:
        c, step = self.config, self.step_count
        xb, yb = self._batch(step)
        if c.dropout > 0:
            masks = np.random.default_rng([c.seed, DROPOUT_STREAM, step])
            for layer in self._lora:
                layer.rng = masks
        self.optimizer.zero_grad()
        loss, d_out = self.loss_fn(self.model.forward(xb), yb)
        if step == 0:
            self.start_loss = loss
        if not math.isfinite(loss) or loss > DIVERGENCE_FACTOR * self.start_loss:
            self._diverged(step + 1, loss)
            return None
        self.model.backward(d_out)
        norm = clip_grad_norm(self.params, c.clip_norm) if c.clip_norm > 0 else grad_norm(self.params)
        lr_scale = self.schedule(step)
        self.optimizer.step(lr_scale)
        self.step_count = step + 1
        return StepMetrics(self.step_count, loss, c.lr * lr_scale, norm, self.train_time)

    def _diverged(self, step: int, loss: float) -> None:
        what = "is not a number" if math.isnan(loss) else (
            "is infinite" if math.isinf(loss) else f"is {loss / self.start_loss:.0f}x the starting loss")
        self.status = "diverged"
        self.message = (f"Training diverged at step {step}: the loss ({loss:.3g}) {what}. "
                        f"Try a smaller learning rate, e.g. lr={self.config.lr / 3:.3g}, "
                        f"or turn on gradient clipping. The curve up to step {step - 1} is kept.")

    def _evaluate_into(self, m: StepMetrics) -> StepMetrics:
        scores = self.task.evaluate(self.model, *self._val)
        metric = scores.get("accuracy", scores.get("bpc", math.nan))
        return StepMetrics(m.step, m.train_loss, m.lr, m.grad_norm, m.time, scores["loss"], metric)

    def step(self, n: int = 1, *, seconds: float | None = None) -> list[StepMetrics]:
        """Advance up to `n` steps (and at most `seconds` of wall time); return their metrics."""
        out: list[StepMetrics] = []
        if self.done:
            return out
        self.status = "running"
        limits = threadpool_limits(1, user_api="blas") if threadpool_limits else None
        start = time.perf_counter()
        try:
            while len(out) < n and self.step_count < self.config.steps:
                m = self._one_step()
                if m is None:
                    break
                now = time.perf_counter()
                m = StepMetrics(m.step, m.train_loss, m.lr, m.grad_norm, self.train_time + now - start)
                if m.step % self.config.eval_every == 0 or m.step == self.config.steps:
                    m = self._evaluate_into(m)
                self.history.append(m)
                out.append(m)
                if seconds is not None and now - start >= seconds:
                    break
        finally:
            self.train_time += time.perf_counter() - start
            if limits is not None:
                limits.restore_original_limits()
        if self.status == "running" and self.step_count >= self.config.steps:
            self.status = "done"
        return out

    def run_for(self, seconds: float) -> list[StepMetrics]:
        """Train for about `seconds` (a UI chunk between redraws)."""
        return self.step(self.config.steps, seconds=seconds)

    def __iter__(self):
        while not self.done:
            yield from self.step(1)

    def run(self) -> "Run":
        """Train to the end (or to divergence)."""
        self.step(self.config.steps)
        return self

    def evaluate(self) -> dict[str, float]:
        """Validation loss and metric of the model as it is now (whole validation set)."""
        return self.task.evaluate(self.model, self.task.x_val, self.task.y_val)
