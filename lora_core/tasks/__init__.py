"""One task per modality. `build_task(config)` is deterministic for a given `config.task_key()`."""
from __future__ import annotations

from .base import Task, num_rows, take


def build_task(config) -> Task:
    """Data, frozen base model, loss and metric for the config's modality (deterministic)."""
    if config.modality == "synthetic":
        from .synthetic import build
    elif config.modality == "image":
        from .image import build
    elif config.modality == "text":
        from .text import build
    else:
        from .multimodal import build
    return build(config)


__all__ = ["Task", "build_task", "num_rows", "take"]
