"""What the dashboard lets one session build: the sidebar's options and ranges, in one place.

Tighter than the core's own validation (which the CLI uses): a class of 30 shares one
small server, so each session's data, model and run stay small. The sidebar draws its
widgets from these tables, and an uploaded run is checked against them.
"""
from __future__ import annotations

from lora_core import Config

# A config outside these is not built on a shared server (size_problem); one the sidebar cannot show
# exactly cannot be adopted by it (sidebar_problem): a widget would silently change a setting, and the run.
MAX_DIM, MAX_SAMPLES, MAX_STEPS, MAX_SEED, MAX_CONTEXT = 512, 16384, 20000, 2 ** 31 - 1, 32
SIDEBAR_OPTIONS = {"syn_samples": (256, 512, 1024, 2048, 4096, 8192, 16384), "img_dataset": ("digits", "mnist"),
                   "img_hidden": (32, 64, 128, 256), "txt_embed": (8, 16, 32), "txt_hidden": (64, 128, 256, 512),
                   "mm_hidden": (32, 64, 128)}
SIDEBAR_RANGES = {"syn_d_in": (2, MAX_DIM), "syn_d_out": (2, MAX_DIM), "syn_decay": (0.05, 1.0),
                  "syn_noise": (0.0, 2.0), "img_angle": (-180.0, 180.0), "txt_context": (2, MAX_CONTEXT),
                  "alpha": (0.125, 1024.0), "dropout": (0.0, 0.9), "steps": (10, MAX_STEPS), "seed": (0, MAX_SEED),
                  "weight_decay": (0.0, 1.0), "momentum": (0.0, 0.99), "loraplus_ratio": (1.0, 64.0),
                  "clip_norm": (0.0, 100.0), "eval_every": (1, 1000)}
MODALITY_FIELDS = {"synthetic": "syn_", "image": "img_", "text": "txt_", "multimodal": "mm_"}
LR_GRID = (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
BATCH_SIZES = (16, 32, 64, 100, 128, 256, 512)


def max_rank(config: Config) -> int:
    """The largest rank the sidebar offers for this config (the model may refuse less, with a sentence)."""
    return min(config.syn_d_in, config.syn_d_out) if config.modality == "synthetic" else MAX_DIM


def size_problem(config: Config) -> str | None:
    """A sentence if this server would not build the data and model of `config` (larger than the sidebar's)."""
    c = config
    sizes = {"synthetic": [("syn_d_in", c.syn_d_in, MAX_DIM), ("syn_d_out", c.syn_d_out, MAX_DIM),
                           ("syn_samples", c.syn_samples, MAX_SAMPLES)],
             "image": [("img_hidden", c.img_hidden, max(SIDEBAR_OPTIONS["img_hidden"]))],
             "text": [("txt_hidden", c.txt_hidden, max(SIDEBAR_OPTIONS["txt_hidden"])),
                      ("txt_embed", c.txt_embed, max(SIDEBAR_OPTIONS["txt_embed"])),
                      ("txt_context", c.txt_context, MAX_CONTEXT)],
             "multimodal": [("mm_hidden", c.mm_hidden, max(SIDEBAR_OPTIONS["mm_hidden"]))]}[c.modality]
    for name, value, limit in sizes:
        if value > limit:
            return (f"This run is larger than this dashboard builds ({name}={value}; at most {limit}): "
                    f"`python -m lora_core` can still train or inspect it.")
    return None


def sidebar_problem(config: Config) -> str | None:
    """A sentence if the sidebar cannot show `config` exactly (so the run could not be resumed there)."""
    values = config.to_dict()
    own = MODALITY_FIELDS[config.modality]
    for name, options in SIDEBAR_OPTIONS.items():
        if name.startswith(own) and values[name] not in options:
            return (f"The sidebar offers {name} = {', '.join(map(str, options))}, not {values[name]}, so this run "
                    f"can be inspected and evaluated here but not resumed.")
    skip = set()
    if config.method != "lora":
        skip |= {"alpha", "dropout"}
    if config.optimizer not in ("momentum", "nesterov"):
        skip.add("momentum")
    for name, (low, high) in SIDEBAR_RANGES.items():
        other = any(name.startswith(prefix) for prefix in MODALITY_FIELDS.values()) and not name.startswith(own)
        if name in skip or other:
            continue
        if not low <= values[name] <= high:
            return (f"The sidebar takes {name} from {_plain(low)} to {_plain(high)}, not {_plain(values[name])}, so "
                    f"this run can be inspected and evaluated here but not resumed.")
    rank_limit = max_rank(config)
    if config.method == "lora" and config.rank > rank_limit:
        return f"The sidebar takes a rank up to {rank_limit}, not {config.rank}, so this run cannot be resumed here."
    return None


def _plain(x) -> str:
    return f"{x:g}" if isinstance(x, float) else f"{x:,}"
