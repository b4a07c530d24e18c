"""One LoRA training step, NumPy core vs PyTorch eager, side by side in one run.

    python benchmarks/bench_step.py            # NumPy only if torch is not installed
    pip install -r requirements-bench.txt      # torch==2.13.0, the local CPU build

Same work in both: a frozen d x d linear layer with a rank-8 adapter, a batch of
64, MSE loss, backward, Adam. Both run on one thread (as the app does: the other
core serves the page and the other sessions). Prints steps per second and the ratio.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lora_core.layers import Linear  # noqa: E402
from lora_core.losses import mse_loss  # noqa: E402
from lora_core.models import Sequential, add_lora  # noqa: E402
from lora_core.optim import Adam  # noqa: E402

SIZES = (8, 64, 256, 1024, 2048)
BATCH, RANK, SECONDS = 64, 8, 1.0


def steps_per_second(step, seconds: float = SECONDS) -> float:
    for _ in range(20):  # warm up: caches, allocator, lazy state
        step()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            step()
        n += 10
    return n / (time.perf_counter() - start)


def numpy_step(d: int):
    rng = np.random.default_rng(0)
    model = Sequential(fc1=Linear(d, d, bias=False, rng=rng, dtype=np.float32))
    model.fc1.need_input_grad = False
    add_lora(model, ["fc1"], r=min(RANK, d), alpha=16.0, rng=rng)
    params = model.trainable_parameters()
    optimizer = Adam(params, lr=1e-3)
    x = rng.standard_normal((BATCH, d)).astype(np.float32)
    y = rng.standard_normal((BATCH, d)).astype(np.float32)

    def step():
        optimizer.zero_grad()
        _, d_out = mse_loss(model.forward(x), y)
        model.backward(d_out)
        optimizer.step()

    return step


def torch_step(d: int):
    import torch

    g = torch.Generator().manual_seed(0)
    w0 = torch.randn(d, d, generator=g) / d ** 0.5  # frozen
    r = min(RANK, d)
    a = (torch.rand(r, d, generator=g) * 2 - 1) / d ** 0.5
    a.requires_grad_(True)
    b = torch.zeros(d, r, requires_grad=True)
    scale = 16.0 / r
    optimizer = torch.optim.Adam([a, b], lr=1e-3)
    x, y = torch.randn(BATCH, d, generator=g), torch.randn(BATCH, d, generator=g)

    def step():
        optimizer.zero_grad(set_to_none=False)
        out = x @ w0.T + scale * (x @ a.T) @ b.T
        loss = torch.nn.functional.mse_loss(out, y)
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    try:
        import torch

        torch.set_num_threads(1)
        torch_version = torch.__version__
    except ImportError:
        torch = None
        torch_version = "not installed"
    print(f"LoRA step (batch {BATCH}, rank {RANK}, Adam, float32, 1 thread); numpy {np.__version__}, "
          f"torch {torch_version}")
    print(f"{'d':>6} | {'numpy steps/s':>14} | {'torch steps/s':>14} | {'numpy / torch':>13}")
    print("-" * 58)
    with threadpool_limits(1):
        for d in SIZES:
            ours = steps_per_second(numpy_step(d))
            theirs = steps_per_second(torch_step(d)) if torch else float("nan")
            print(f"{d:>6} | {ours:>14,.0f} | {theirs:>14,.0f} | {ours / theirs:>12.2f}x")


if __name__ == "__main__":
    main()
