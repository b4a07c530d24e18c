"""Streamlit pieces the pages share: live figures, the parameter summary, what a run learned."""
from __future__ import annotations

import math

import numpy as np
import streamlit as st

from lora_core import Run
from lora_core.accounting import summary
from lora_core.models import lora_layers
from lora_core.tasks.multimodal import branch_contributions
from lora_core.tasks.text import sample

from . import figures
from .figures import human_bytes, human_count


LIVE_POINTS = 400  # points per curve on the live chart: the browser redraws it several times a second


def chart(fig, key: str | None = None) -> None:
    """Show a figure with its own styling (Streamlit's theme would replace its fonts and colours).

    No toolbar: it covers titles on a phone; drag still zooms and a double click resets."""
    st.plotly_chart(fig, theme=None, width="stretch", key=key, config={"displayModeBar": False})


def metric_row():
    """Numbers side by side that wrap, rather than stack one per line, on a narrow screen."""
    return st.container(horizontal=True, gap="medium")


def steps_per_second(run: Run, window: int = 200) -> float:
    """Recent training speed, from the history's wall-clock column."""
    times = run.history.array("time")[-window:]
    if len(times) < 2 or times[-1] <= times[0]:
        return math.nan
    return (len(times) - 1) / (times[-1] - times[0])


def live_numbers(run: Run) -> None:
    """Step, losses, metric, speed and ETA as big numbers, then a progress bar."""
    c = run.config
    rate = steps_per_second(run)
    left = (c.steps - run.step_count) / rate if rate == rate and rate > 0 else math.nan
    cols = [metric_row()] * 5
    cols[0].metric("Step", f"{run.step_count:,} / {c.steps:,}")
    cols[1].metric("Train loss", _fmt(run.history.last("train_loss")))
    metric = run.task.metric
    if metric == "accuracy":
        cols[2].metric("Val accuracy", _pct(run.history.last("val_metric")))
    elif metric == "bpc":
        cols[2].metric("Val bits/char", _fmt(run.history.last("val_metric")))
    else:
        cols[2].metric("Val loss", _fmt(run.history.last("val_loss")))
    cols[3].metric("Steps / s", "—" if rate != rate else f"{rate:,.0f}")
    cols[4].metric("ETA", "done" if run.done else ("—" if left != left else f"{left:,.1f} s"))
    st.progress(run.step_count / c.steps)


def _fmt(x: float) -> str:
    return "—" if x != x else f"{x:.4g}"


def _pct(x: float) -> str:
    return "—" if x != x else f"{100 * x:.1f}%"


def loss_chart(run: Run, *, smoothing: float, log_y: bool, previous: list[Run] = (),
               key: str | None = None) -> None:
    h = run.history
    val = ~np.isnan(h.array("val_loss"))
    fig = figures.loss_figure(
        h.array("step"), h.array("train_loss"), val_steps=h.array("step")[val], val_loss=h.array("val_loss")[val],
        smoothing=smoothing, log_y=log_y, floors=visible_floors(run.theory_floor()),
        previous=[{"label": f"previous: {describe(r.config)}", "steps": r.history.array("step"),
                   "loss": r.history.array("train_loss")} for r in previous],
        title="Loss (train and validation)", max_points=LIVE_POINTS)
    chart(fig, key)


def visible_floors(floors: dict | None) -> dict | None:
    """The floors worth a line: a noise floor far below the theory floor (the toy's 8e-6) would only
    stretch the log axis and flatten the curve, so it is left out (it is still in the numbers)."""
    if not floors:
        return floors
    if floors.get("noise", 0.0) < floors["population"] / 50:
        return {k: v for k, v in floors.items() if k != "noise"}
    return floors


def metric_chart(run: Run, base_score: float | None, key: str | None = None) -> None:
    if run.task.metric is None:
        return
    h = run.history
    val = ~np.isnan(h.array("val_metric"))
    accuracy = run.task.metric == "accuracy"
    fig = figures.metric_figure(h.array("step")[val], h.array("val_metric")[val],
                                name="accuracy" if accuracy else "bits per character", percent=accuracy,
                                baseline=base_score)
    chart(fig, key)


def describe(config) -> str:
    """A short label for a run: what trained, at what rank, with which optimizer."""
    what = f"r={config.rank}" if config.method == "lora" else config.method
    return f"{what}, {config.optimizer} lr={config.lr:g}, seed {config.seed}"


def parameter_summary(run: Run) -> None:
    s = summary(run.model, run.config.optimizer, dtype_bytes=np.dtype(run.config.dtype).itemsize)
    cols = [metric_row()] * 4
    cols[0].metric("Trainable", human_count(s.trainable_params), help="Numbers the optimizer changes.")
    cols[1].metric("Frozen", human_count(s.frozen_params))
    cols[2].metric("% of full fine-tuning", f"{100 * s.trainable_params / max(s.full_finetune_params, 1):.2f}%")
    cols[3].metric("Reduction", "—" if not math.isfinite(s.reduction) else f"{s.reduction:,.1f}×")
    st.caption(f"Memory: weights {human_bytes(s.weight_bytes)}, gradients {human_bytes(s.gradient_bytes)}, "
               f"{run.config.optimizer} state {human_bytes(s.optimizer_state_bytes)} "
               f"(full fine-tuning would need {human_bytes(s.full_ft_optimizer_state_bytes)}); "
               f"adapter file {human_bytes(s.adapter_bytes_fp16)} in fp16.")


# -- what was learned, per modality ------------------------------------------------------------
def learned(run: Run) -> None:
    modality = run.config.modality
    if modality == "synthetic":
        _learned_synthetic(run)
    elif modality == "image":
        _learned_image(run)
    elif modality == "text":
        _learned_text(run)
    else:
        _learned_multimodal(run)


def _learned_synthetic(run: Run) -> None:
    extras = run.task.extras
    true_delta = extras["true_delta"]
    layer = run.model.fc1
    learned_delta = layer.delta_weight() if hasattr(layer, "delta_weight") else layer.weight.value - extras["w0"]
    chart(figures.delta_comparison_figure(true_delta, learned_delta))
    learned_s = np.linalg.svd(learned_delta, compute_uv=False)[: len(extras["true_singular_values"]) + 4]
    chart(figures.singular_values_figure(
        {"true dW*": extras["true_singular_values"], "learned dW": learned_s},
        rank=run.config.rank if run.config.method == "lora" else None))
    st.caption("A rank-r adapter can only capture the top r singular directions of dW*: the rest of the "
               "spectrum is the gap between the curve and the noise floor (Eckart–Young).")


def _learned_image(run: Run) -> None:
    task, n = run.task, 24
    x, y = task.x_val[:n], task.y_val[:n]
    base = task.build_model().eval()
    base_pred = base.forward(x).argmax(axis=1)
    run.model.eval()
    adapted_pred = run.model.forward(x).argmax(axis=1)
    run.model.train()
    images = task.extras["val_images"][:n]
    chart(figures.prediction_grid_figure(images, y, base_pred, adapted_pred, task.extras["class_names"]))
    st.caption("Target-domain validation images: the frozen base's guess and the adapted model's guess.")


def _learned_text(run: Run) -> None:
    c1, c2 = st.columns([1, 1])
    temperature = c1.slider("Temperature", 0.2, 1.5, 0.8, 0.1, key="text_temperature")
    sample_seed = c2.number_input("Sampling seed", 0, 10_000, 0, key="text_seed")
    prompt = run.task.extras["prompt"]
    base = run.task.build_model()
    left, right = st.columns(2)
    left.markdown("**Frozen base (prose)**")
    left.code(sample(base, prompt, 240, temperature=temperature, seed=sample_seed), language=None, wrap_lines=True)
    right.markdown(f"**Adapted ({describe(run.config)})**")
    right.code(sample(run.model, prompt, 240, temperature=temperature, seed=sample_seed), language=None,
               wrap_lines=True)


def _learned_multimodal(run: Run) -> None:
    rows = run.model.parameter_breakdown()
    left, right = st.columns(2)
    with left:
        chart(figures.param_split_figure(rows))
    if lora_layers(run.model):
        scores = branch_contributions(run.task, run.model)
        metric = "accuracy" if run.task.metric == "accuracy" else "loss"
        with right:
            chart(figures.branch_figure({k: v[metric] for k, v in scores.items()}, metric=metric))
        right.caption("Validation score with each modality's adapter switched on alone: which adapter matters.")
