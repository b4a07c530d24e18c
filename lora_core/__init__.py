"""LoRA Lab's core: a NumPy-only LoRA library (layers, models, optimizers, tasks, trainer, checkpoints).

    from lora_core import Config, Run
    run = Run(Config(modality="synthetic", rank=4)).run()
    print(run.history.last("val_loss"), run.theory_floor())
"""
from .config import MODALITIES, PRESETS, Config, default_config, preset_config
from .errors import CheckpointError, ConfigError
from .layers import Linear, LoRALinear
from .trainer import History, Run, StepMetrics

__all__ = ["MODALITIES", "PRESETS", "CheckpointError", "Config", "ConfigError", "History", "Linear", "LoRALinear",
           "Run", "StepMetrics", "default_config", "preset_config"]
