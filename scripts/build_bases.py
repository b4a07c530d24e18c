"""Train the frozen base model of every preset and commit it under data/bases/ (safetensors).

Deterministic: the same code gives the same weights. Runs with other sizes train
their base on first use instead; the committed files only make presets start fast.

    python scripts/build_bases.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lora_core.config import PRESETS, preset_config  # noqa: E402
from lora_core.tasks import bases, image, multimodal, text  # noqa: E402

MODULES = {"image": image, "text": text, "multimodal": multimodal}
# Fusions the app offers for emoji: each has its own base.
EXTRA = [dict(modality="multimodal", mm_dataset="emoji", mm_fusion=f) for f in ("late", "early", "attention")]


def main() -> None:
    built = set()
    for overrides in [PRESETS[name] for name in PRESETS] + EXTRA:
        config = preset_config("synthetic", **overrides)
        module = MODULES.get(config.modality)
        if module is None or config.is_toy:
            continue  # synthetic data and the toy have no trained base
        key = module.base_key(config)
        if key in built:
            continue
        built.add(key)
        start = time.perf_counter()
        path = bases.save_base(key, module.train_base(config))
        print(f"{path.name}: {path.stat().st_size / 1024:.0f} KB, trained in {time.perf_counter() - start:.1f} s",
              flush=True)


if __name__ == "__main__":
    main()
