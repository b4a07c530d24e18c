"""Comparisons: the same data and seed, one setting varied. Pure logic, no Streamlit.

`plan` turns a base config and the chosen values into labelled configs;
`results` reduces finished runs to one row per label (mean and spread over seeds).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lora_core import Config, ConfigError, Run
from lora_core.accounting import summary
from lora_core.models import FUSIONS

KINDS = {"rank": "ranks", "optimizer": "optimizers", "fusion": "fusions (text + image)"}
RANK_CHOICES = (1, 2, 4, 8, 16, 32, 64)
BASELINES = ("full", "head")


@dataclass
class Entry:
    label: str
    seed: int
    config: Config
    run: Run | None = None
    error: str = ""


def plan(config: Config, kind: str, values: list, *, baselines=(), seeds: int = 1) -> list[Entry]:
    """One entry per (value, seed); baselines (full, head) join a rank comparison."""
    if kind not in KINDS:
        raise ConfigError(f"compare={kind!r} is not allowed: compare must be one of {tuple(KINDS)}.")
    variants: list[tuple[str, dict]] = []
    if kind == "rank":
        variants = [(f"r={r}", dict(method="lora", rank=r)) for r in values]
        variants += [(b, dict(method=b)) for b in baselines]
    elif kind == "optimizer":
        variants = [(name, dict(optimizer=name)) for name in values]
    else:
        variants = [(fusion, dict(mm_fusion=fusion)) for fusion in values if fusion in FUSIONS]
    entries = []
    for label, changes in variants:
        for s in range(seeds):
            seed = config.seed + s
            try:
                entries.append(Entry(label, seed, config.replace(**changes, seed=seed)))
            except ConfigError as error:
                entries.append(Entry(label, seed, config, error=str(error)))
    return entries


def _mean_std(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return math.nan, math.nan
    return float(np.mean(finite)), float(np.std(finite)) if len(finite) > 1 else 0.0


def results(entries: list[Entry]) -> list[dict]:
    """One row per label: params, % of full, final losses (mean, std over seeds), metric, time, speed."""
    rows = []
    for label in dict.fromkeys(e.label for e in entries):
        group = [e for e in entries if e.label == label]
        runs = [e.run for e in group if e.run is not None]
        error = next((e.error for e in group if e.error), "")
        if not runs:
            rows.append({"label": label, "error": error or "not started"})
            continue
        first = runs[0]
        s = summary(first.model, first.config.optimizer)
        train = _mean_std([r.history.last("train_loss") for r in runs])
        val = _mean_std([r.history.last("val_loss") for r in runs])
        metric = _mean_std([r.history.last("val_metric") for r in runs])
        seconds = float(np.mean([r.train_time for r in runs]))
        rows.append({
            "label": label, "method": first.config.method,
            "rank": first.config.rank if first.config.method == "lora" else None,
            "trainable_params": s.trainable_params,
            "percent_of_full": 100.0 * s.trainable_params / max(s.full_finetune_params, 1),
            "final_train_loss": train[0], "final_val_loss": val[0], "val_loss_std": val[1],
            "metric": metric[0], "metric_std": metric[1],
            "seconds": seconds, "steps_per_second": (np.mean([r.step_count for r in runs]) / seconds
                                                     if seconds > 0 else math.nan),
            "steps": min(r.step_count for r in runs), "seeds": len(runs),
            "status": "diverged" if any(r.status == "diverged" for r in runs) else (
                "done" if all(r.done for r in runs) else "training"),
            "error": error,
        })
    return rows
