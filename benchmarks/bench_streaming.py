"""What streaming the chart costs next to training, per redraw of the Train page.

    python benchmarks/bench_streaming.py

Each tick of the live page trains for a time budget (CHUNK_SECONDS) and then
rebuilds the loss figure from the whole history and serialises it for the
browser. The figure is downsampled, so its cost must stay flat as the run grows.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab_ui import figures  # noqa: E402
from lab_ui.session import CHUNK_SECONDS  # noqa: E402
from lora_core import Config, Run  # noqa: E402

HISTORY_LENGTHS = (1_000, 10_000, 100_000)


def figure_seconds(run: Run, repeats: int = 5) -> tuple[float, int]:
    h = run.history
    val = ~np.isnan(h.array("val_loss"))
    start = time.perf_counter()
    for _ in range(repeats):
        fig = figures.loss_figure(h.array("step"), h.array("train_loss"), val_steps=h.array("step")[val],
                                  val_loss=h.array("val_loss")[val], floors=run.theory_floor())
        payload = fig.to_json()
    return (time.perf_counter() - start) / repeats, len(payload)


def main() -> None:
    print(f"Per redraw: train for {CHUNK_SECONDS * 1000:.0f} ms, then rebuild and serialise the loss figure")
    print(f"{'history (steps)':>16} | {'figure ms':>9} | {'JSON KB':>8} | {'figure / training':>17}")
    print("-" * 60)
    for length in HISTORY_LENGTHS:
        run = Run(Config(syn_d_in=16, syn_d_out=16, syn_true_rank=4, syn_samples=512, steps=length + 1,
                         eval_every=50))
        run.step(length)
        seconds, size = figure_seconds(run)
        print(f"{length:>16,} | {seconds * 1000:>9.1f} | {size / 1024:>8.0f} | {seconds / CHUNK_SECONDS:>16.0%}")


if __name__ == "__main__":
    main()
