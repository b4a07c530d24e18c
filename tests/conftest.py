import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lora_core.config import preset_config  # noqa: E402
from lora_core.tasks import build_task  # noqa: E402


@pytest.fixture(scope="session")
def preset_task():
    """build_task for a preset, built once per session (tasks are read-only, so sharing is safe)."""
    cache = {}

    def get(name, **overrides):
        config = preset_config(name, **overrides)
        key = config.task_key()
        if key not in cache:
            cache[key] = build_task(config)
        return config, cache[key]

    return get
