"""One experiment = one `Config`: every knob, validated once, here, at the boundary.

The config is flat (one field per widget, CLI flag and URL parameter) and
JSON-round-trips through `to_dict` / `from_dict`. Modality-specific fields are
prefixed (`syn_`, `img_`, `txt_`, `mm_`) and ignored by the other modalities.
Named presets (`PRESETS`) are partial configs applied over the defaults.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields

from .errors import ConfigError, check
from .layers import LORA_INITS
from .models import FUSIONS, METHODS
from .optim import OPTIMIZERS, SCHEDULES

MODALITIES = ("synthetic", "image", "text", "multimodal")
SYN_BASES = ("identity", "random", "none")
IMG_DATASETS = ("digits", "mnist", "fashion")
IMG_SHIFTS = ("rotate", "mirror", "fashion")
MM_DATASETS = ("emoji", "toy")
MM_SHIFTS = ("both", "image", "text")
DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class Config:
    """Everything that decides a run. Same config (seed included), same curve, bit for bit."""

    modality: str = "synthetic"
    # synthetic: y = x (W0 + dW*)^T + noise, dW* of rank syn_true_rank
    syn_d_in: int = 64
    syn_d_out: int = 64
    syn_true_rank: int = 8
    syn_decay: float = 0.7  # singular values of dW* fall as decay**i
    syn_noise: float = 0.1  # std of the noise: the loss can never go below noise**2
    syn_samples: int = 2048  # training samples (validation gets a quarter as many more)
    syn_base: str = "random"
    # image: an MLP trained on one domain, adapted to a shifted one
    img_dataset: str = "digits"
    img_shift: str = "rotate"
    img_angle: float = 90.0  # degrees, for img_shift="rotate"
    img_hidden: int = 64
    # text: a character model trained on English prose, adapted to Shakespeare
    txt_context: int = 8
    txt_embed: int = 16
    txt_hidden: int = 256
    # multimodal: emoji pictures and names, or the original random-feature toy
    mm_dataset: str = "emoji"
    mm_fusion: str = "late"
    mm_shift: str = "both"  # emoji target domain: pictures turned, names backwards, or both
    mm_hidden: int = 64
    # what trains
    method: str = "lora"
    rank: int = 4
    alpha: float = 8.0
    use_rslora: bool = False
    init: str = "kaiming"
    dropout: float = 0.0
    targets: str = ""  # comma-separated glob patterns of layer paths; empty = the task's default
    # how it trains
    optimizer: str = "adam"
    lr: float = 0.01
    weight_decay: float = 0.0
    momentum: float = 0.9
    loraplus_ratio: float = 1.0
    schedule: str = "constant"
    warmup_steps: int = 0
    clip_norm: float = 0.0  # global gradient-norm clip; 0 turns it off
    steps: int = 500
    batch_size: int = 64
    seed: int = 0
    eval_every: int = 10
    dtype: str = "float32"

    def __post_init__(self):
        _validate(self)

    # -- conversions ---------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Config":
        """Build from a (possibly partial) dict, converting strings; unknown keys are an error."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"unknown setting(s) {unknown}; the settings are {sorted(known)}.")
        return cls(**{k: _convert(known[k], v) for k, v in values.items()})

    def replace(self, **changes) -> "Config":
        return Config.from_dict({**self.to_dict(), **changes})

    def task_key(self) -> tuple:
        """The fields that decide the data and the base model (a cache key for the task)."""
        prefix = {"synthetic": "syn_", "image": "img_", "text": "txt_", "multimodal": "mm_"}[self.modality]
        own = tuple((f.name, getattr(self, f.name)) for f in fields(self) if f.name.startswith(prefix))
        seeded = (("seed", self.seed),) if self.modality == "synthetic" or self.is_toy else ()
        return (self.modality, self.dtype) + own + seeded

    @property
    def is_toy(self) -> bool:
        return self.modality == "multimodal" and self.mm_dataset == "toy"

    def target_patterns(self) -> list[str]:
        return [t.strip() for t in self.targets.split(",") if t.strip()]


def _convert(f: dataclasses.Field, value):
    """Coerce a string (CLI, URL) or JSON value to the field's type, with a clear error."""
    kind = type(f.default)
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if kind is int:
            number = float(value)
            if not number.is_integer():
                raise ValueError
            return int(number)
        return kind(value)
    except (TypeError, ValueError, OverflowError):
        what = {bool: "true or false", int: "a whole number", float: "a number"}.get(kind, "text")
        raise ConfigError(f"{f.name}={value!r} is not allowed: {f.name} must be {what}.") from None


def _validate(c: Config) -> None:
    one_of = lambda name, options: check(getattr(c, name) in options, name, getattr(c, name), f"one of {options}")
    at_least = lambda name, low: check(getattr(c, name) >= low, name, getattr(c, name), f">= {low}")
    for name, options in (("modality", MODALITIES), ("syn_base", SYN_BASES), ("img_dataset", IMG_DATASETS),
                          ("img_shift", IMG_SHIFTS), ("mm_dataset", MM_DATASETS), ("mm_shift", MM_SHIFTS), ("mm_fusion", FUSIONS),
                          ("method", METHODS), ("init", LORA_INITS), ("optimizer", OPTIMIZERS),
                          ("schedule", SCHEDULES), ("dtype", DTYPES)):
        one_of(name, options)
    for name in ("syn_d_in", "syn_d_out", "syn_true_rank", "img_hidden", "txt_context", "txt_embed",
                 "txt_hidden", "mm_hidden", "rank", "steps", "batch_size", "eval_every"):
        at_least(name, 1)
    check(c.syn_d_in <= 1024 and c.syn_d_out <= 1024, "syn_d_in", c.syn_d_in,
          "at most 1024 (and so must syn_d_out) to keep a run interactive")
    check(c.syn_true_rank <= min(c.syn_d_in, c.syn_d_out), "syn_true_rank", c.syn_true_rank,
          f"at most min(syn_d_in, syn_d_out) = {min(c.syn_d_in, c.syn_d_out)}")
    check(c.syn_base != "identity" or c.syn_d_in == c.syn_d_out, "syn_base", c.syn_base,
          "'random' or 'none' when syn_d_in != syn_d_out (an identity base needs a square W0)")
    check(0.0 < c.syn_decay <= 1.0, "syn_decay", c.syn_decay, "in (0, 1]")
    check(0.0 <= c.syn_noise <= 10.0, "syn_noise", c.syn_noise, "in [0, 10]")
    check(c.syn_samples >= c.syn_d_in, "syn_samples", c.syn_samples,
          f">= syn_d_in = {c.syn_d_in} so the least-squares optimum is unique")
    check(c.syn_samples * (c.syn_d_in + c.syn_d_out) <= 8_000_000, "syn_samples", c.syn_samples,
          f"at most {8_000_000 // (c.syn_d_in + c.syn_d_out)} for {c.syn_d_in} + {c.syn_d_out} features "
          "(the data must stay small)")
    check(c.img_shift != "fashion" or c.img_dataset == "mnist", "img_shift", c.img_shift,
          "used with img_dataset='mnist' only (digits -> fashion needs 28x28 digits)")
    check(c.img_dataset != "fashion" or c.img_shift != "fashion", "img_dataset", c.img_dataset, "not 'fashion' here")
    check(c.mm_dataset != "toy" or c.mm_fusion == "late", "mm_fusion", c.mm_fusion,
          "'late' for the toy (its branches are single projections summed, as in the original)")
    check(-360.0 <= c.img_angle <= 360.0, "img_angle", c.img_angle, "in [-360, 360] degrees")
    check(c.txt_context <= 64, "txt_context", c.txt_context, "at most 64 characters")
    check(math.isfinite(c.alpha) and c.alpha > 0, "alpha", c.alpha, "a number > 0")
    check(0.0 <= c.dropout < 1.0, "dropout", c.dropout, "in [0, 1)")
    check(math.isfinite(c.lr) and 0 < c.lr <= 10, "lr", c.lr, "in (0, 10]")
    check(math.isfinite(c.weight_decay) and c.weight_decay >= 0, "weight_decay", c.weight_decay, "a finite number >= 0")
    check(0.0 <= c.momentum < 1.0, "momentum", c.momentum, "in [0, 1)")
    check(math.isfinite(c.loraplus_ratio) and c.loraplus_ratio >= 1.0, "loraplus_ratio", c.loraplus_ratio,
          "a finite number >= 1 (1 turns LoRA+ off)")
    check(0 <= c.warmup_steps < c.steps, "warmup_steps", c.warmup_steps, f"in [0, steps) = [0, {c.steps})")
    check(math.isfinite(c.clip_norm) and c.clip_norm >= 0, "clip_norm", c.clip_norm,
          "a finite number >= 0 (0 turns clipping off)")
    check(c.steps <= 1_000_000, "steps", c.steps, "at most 1000000")
    check(c.batch_size <= 65_536, "batch_size", c.batch_size, "at most 65536")
    check(0 <= c.seed < 2 ** 32, "seed", c.seed, "a whole number from 0 to 2**32 - 1")


# Presets: partial configs over the defaults. `seed` is the original toy exactly.
PRESETS: dict[str, dict] = {
    "synthetic": dict(modality="synthetic"),
    "synthetic-low-rank": dict(modality="synthetic", rank=2, syn_true_rank=8),
    "synthetic-toy-size": dict(modality="synthetic", syn_d_in=8, syn_d_out=8, syn_true_rank=2, rank=1,
                               syn_samples=256, syn_base="none"),
    "digits-rotated": dict(modality="image", img_dataset="digits", img_shift="rotate", img_angle=90.0,
                           rank=4, alpha=8.0, lr=0.01, steps=400, batch_size=128),
    "digits-mirrored": dict(modality="image", img_dataset="digits", img_shift="mirror", rank=4, steps=400,
                            batch_size=128),
    "mnist-to-fashion": dict(modality="image", img_dataset="mnist", img_shift="fashion", img_hidden=128,
                             rank=8, alpha=16.0, steps=600, batch_size=128),
    "text": dict(modality="text", rank=8, alpha=16.0, lr=0.005, steps=600, batch_size=128),
    "emoji": dict(modality="multimodal", mm_dataset="emoji", mm_fusion="late", rank=4, alpha=8.0, steps=500,
                  batch_size=128),
    "emoji-early": dict(modality="multimodal", mm_dataset="emoji", mm_fusion="early", rank=4, alpha=8.0,
                        steps=500, batch_size=128),
    "emoji-attention": dict(modality="multimodal", mm_dataset="emoji", mm_fusion="attention", rank=4, alpha=8.0,
                            steps=500, batch_size=128),
    # The original toy: text 4 + image 4 features U(-1, 1), target = the features, no base,
    # rank 1 per modality at scale 1, plain SGD at lr 0.01 for 500 full-batch steps on 100 samples.
    "seed": dict(modality="multimodal", mm_dataset="toy", mm_fusion="late", rank=1, alpha=1.0,
                 init="gaussian", optimizer="sgd", lr=0.01, steps=500, batch_size=100, eval_every=10,
                 dtype="float64"),
}
# The preset each modality opens with.
DEFAULT_PRESET = {"synthetic": "synthetic", "image": "digits-rotated", "text": "text", "multimodal": "emoji"}


def preset_config(name: str, **overrides) -> Config:
    check(name in PRESETS, "preset", name, f"one of {tuple(PRESETS)}")
    return Config.from_dict({**PRESETS[name], **overrides})


def default_config(modality: str = "synthetic", **overrides) -> Config:
    check(modality in MODALITIES, "modality", modality, f"one of {MODALITIES}")
    return preset_config(DEFAULT_PRESET[modality], **overrides)
