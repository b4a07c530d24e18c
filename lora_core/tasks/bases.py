"""Trained base models: loaded from data/bases/ when committed, else trained now.

A base depends only on the options that shape it (dataset, sizes), never on the
run's seed, so every run of a class starts from the same frozen model.
Files are safetensors (never pickle); `scripts/build_bases.py` writes them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..datasets import DATA_DIR

BASES_DIR = Path(DATA_DIR) / "bases"


def base_path(key: str) -> Path:
    return BASES_DIR / f"{key}.safetensors"


def load_or_train(key: str, train: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The float32 state of base `key`: from its committed file, or from `train()` when absent."""
    path = base_path(key)
    if path.exists():
        from safetensors.numpy import load_file

        return load_file(str(path))
    return train()


def save_base(key: str, state: dict[str, np.ndarray]) -> Path:
    from safetensors.numpy import save_file

    BASES_DIR.mkdir(parents=True, exist_ok=True)
    path = base_path(key)
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}, str(path),
              metadata={"format": "np", "key": key})
    return path
