"""The experiment config as sidebar widgets, the same on every page, mirrored in the URL.

Each config field has one widget, keyed `cfg_<field>` in `st.session_state`.
The first run of a session fills those keys from the URL; afterwards the widgets
are the truth and the URL follows them. Impossible combinations are prevented by
widget bounds where possible and otherwise explained in one sentence.
"""
from __future__ import annotations

import streamlit as st

from lora_core import Config, ConfigError, default_config, preset_config
from lora_core.config import (IMG_SHIFTS, LORA_INITS, METHODS, MM_DATASETS, MM_SHIFTS, OPTIMIZERS,
                              PRESETS, SCHEDULES, SYN_BASES)
from lora_core.models import FUSIONS

from .limits import BATCH_SIZES, LR_GRID, SIDEBAR_OPTIONS, SIDEBAR_RANGES, max_rank
from .urlstate import config_from_query, config_to_query

KEY = "cfg_{}".format
CONFIG = "config"  # the last valid config, in st.session_state
NO_PRESET = "—"
PAGE_PARAMS = ("compare",)  # query parameters a page owns: kept when the sidebar rewrites the URL

MODALITY_LABELS = {"synthetic": "Synthetic (known answer)", "image": "Image (digits, clothes)",
                   "text": "Text (prose → Shakespeare)", "multimodal": "Text + image (emoji)"}
LABELS = {
    "syn_base": {"identity": "identity", "random": "random", "none": "none (zero, as the toy)"},
    "img_dataset": {"digits": "digits 8×8", "mnist": "MNIST 28×28", "fashion": "Fashion-MNIST 28×28"},
    "img_shift": {"rotate": "rotated", "mirror": "mirrored", "fashion": "MNIST → Fashion-MNIST"},
    "mm_dataset": {"emoji": "emoji pictures + names", "toy": "the original toy (random features)"},
    "mm_fusion": {"late": "late (sum of branches)", "early": "early (concatenate)",
                  "attention": "cross-modal attention"},
    "mm_shift": {"both": "pictures turned + names backwards", "image": "pictures turned",
                 "text": "names written backwards"},
    "method": {"lora": "LoRA adapters", "full": "full fine-tuning", "head": "head only (linear probe)"},
    "init": {"kaiming": "Kaiming-uniform A, B = 0", "gaussian": "Gaussian A, B = 0",
             "pissa": "PiSSA (SVD of W0)"},
    "optimizer": {"sgd": "SGD", "momentum": "SGD + momentum", "nesterov": "SGD + Nesterov",
                  "rmsprop": "RMSprop", "adam": "Adam", "adamw": "AdamW"},
    "schedule": {"constant": "constant", "warmup_cosine": "warm-up + cosine"},
}


def _seed(config: Config, overwrite: bool) -> None:
    """Put a config's values into the widget keys (on first load, a preset, a new modality)."""
    for name, value in config.to_dict().items():
        if overwrite or KEY(name) not in st.session_state:
            st.session_state[KEY(name)] = value
    st.session_state[CONFIG] = config


def _on_modality_change() -> None:
    _seed(default_config(st.session_state[KEY("modality")]), overwrite=True)


def _on_preset_pick() -> None:
    name = st.session_state["preset_picker"]
    if name != NO_PRESET:
        load_preset(name)


def use_config(config: Config) -> None:
    """Show `config` in the sidebar (call from a callback, before the widgets are drawn)."""
    _seed(config, overwrite=True)


def load_preset(name: str) -> None:
    """Callback: open a preset (used by the preset picker and the lessons)."""
    _seed(preset_config(name), overwrite=True)


def _select(name: str, label: str, options, help: str | None = None, **kw):
    labels = LABELS.get(name, {})
    return st.selectbox(label, options, key=KEY(name), help=help, format_func=lambda v: labels.get(v, str(v)), **kw)


def _options(name: str):
    return SIDEBAR_OPTIONS[name]


def _int(name: str, label: str, help: str | None = None, step: int = 1, *, low=None, high=None):
    """A whole-number input with the range from limits.SIDEBAR_RANGES (or a tighter one given here)."""
    low = SIDEBAR_RANGES[name][0] if low is None else low
    high = SIDEBAR_RANGES[name][1] if high is None else high
    # clamp a value from a URL into the widget's range instead of failing
    st.session_state[KEY(name)] = int(min(max(st.session_state[KEY(name)], low), high))
    return st.number_input(label, min_value=low, max_value=high, step=step, key=KEY(name), help=help)


def _float(name: str, label: str, step: float, help: str | None = None):
    low, high = SIDEBAR_RANGES[name]
    st.session_state[KEY(name)] = float(min(max(st.session_state[KEY(name)], low), high))
    return st.number_input(label, min_value=float(low), max_value=float(high), step=step, key=KEY(name), help=help,
                           format="%g")


def _data_widgets(modality: str) -> None:
    if modality == "synthetic":
        c1, c2 = st.columns(2)
        with c1:
            _int("syn_d_in", "d_in", "Input features.")
        with c2:
            _int("syn_d_out", "d_out", "Output features.")
        limit = min(st.session_state[KEY("syn_d_in")], st.session_state[KEY("syn_d_out")])
        _int("syn_true_rank", "True rank of dW*", "Rank of the update the adapter must learn.", low=1, high=limit)
        _float("syn_decay", "Spectrum decay", 0.05,
               "Singular values of dW* fall as decay^i: 1 = all equal (hard for a low rank).")
        _float("syn_noise", "Noise (std)", 0.05, "The loss can never go below noise².")
        st.select_slider("Training samples", _options("syn_samples"), key=KEY("syn_samples"))
        _select("syn_base", "Frozen base W0", SYN_BASES, "identity needs d_in = d_out.")
    elif modality == "image":
        _select("img_dataset", "Dataset", _options("img_dataset"))
        shifts = [s for s in IMG_SHIFTS if s != "fashion" or st.session_state[KEY("img_dataset")] == "mnist"]
        if st.session_state[KEY("img_shift")] not in shifts:
            st.session_state[KEY("img_shift")] = shifts[0]
        _select("img_shift", "Target domain", shifts)
        if st.session_state[KEY("img_shift")] == "rotate":
            low, high = SIDEBAR_RANGES["img_angle"]
            st.slider("Rotation (degrees)", low, high, step=15.0, key=KEY("img_angle"))
        _select("img_hidden", "Hidden width", _options("img_hidden"),
                "The base MLP's width. Sizes without a committed base train one on first use (a few seconds).")
    elif modality == "text":
        _int("txt_context", "Context (characters)")
        _select("txt_embed", "Embedding size", _options("txt_embed"))
        _select("txt_hidden", "Hidden width", _options("txt_hidden"),
                "Sizes other than the default train a new base on first use (about 10 seconds).")
    else:
        _select("mm_dataset", "Data", MM_DATASETS)
        if st.session_state[KEY("mm_dataset")] == "toy":
            st.session_state[KEY("mm_fusion")] = "late"
            st.caption("The toy has one projection per modality, summed: late fusion.")
        else:
            _select("mm_fusion", "Fusion", FUSIONS)
            _select("mm_shift", "Target domain", MM_SHIFTS)
            _select("mm_hidden", "Hidden width", _options("mm_hidden"))


def _adapter_widgets() -> None:
    _select("method", "What trains", METHODS)
    if st.session_state[KEY("method")] != "lora":
        return
    highest = max_rank(Config.from_dict({"modality": st.session_state[KEY("modality")],
                                          "syn_d_in": st.session_state[KEY("syn_d_in")],
                                          "syn_d_out": st.session_state[KEY("syn_d_out")]}))
    c1, c2 = st.columns(2)
    with c1:
        _int("rank", "Rank r", "Adapter rank: trainable numbers per layer = r·(d_in + d_out).", low=1, high=highest)
    with c2:
        _float("alpha", "Alpha", 1.0, "The update is scaled by alpha / r (rsLoRA: alpha / √r).")
    st.toggle("rsLoRA scaling (alpha / √r)", key=KEY("use_rslora"))
    with st.expander("More adapter options"):
        _select("init", "Initialisation", LORA_INITS)
        _float("dropout", "LoRA dropout", 0.05)
        st.text_input("Target layers", key=KEY("targets"), placeholder="the task's default",
                      help="Comma-separated layer paths or patterns, e.g. fc1,fc2 or text.*")


def _optimizer_widgets() -> None:
    _select("optimizer", "Optimizer", OPTIMIZERS)
    grid = sorted(set(LR_GRID) | {st.session_state[KEY("lr")]})
    st.select_slider("Learning rate", grid, key=KEY("lr"))
    c1, c2 = st.columns(2)
    with c1:
        _int("steps", "Steps", step=50)
    with c2:
        _select("batch_size", "Batch size", sorted({*BATCH_SIZES, st.session_state[KEY("batch_size")]}))
    _int("seed", "Seed", "Same seed, same curve: for everyone with this link.")
    with st.expander("More optimizer options"):
        _select("schedule", "Schedule", SCHEDULES)
        if st.session_state[KEY("schedule")] == "warmup_cosine":
            steps = st.session_state[KEY("steps")]
            _int("warmup_steps", "Warm-up steps", low=0, high=max(steps - 1, 0))
        _float("weight_decay", "Weight decay", 0.01)
        if st.session_state[KEY("optimizer")] in ("momentum", "nesterov"):
            _float("momentum", "Momentum", 0.05)
        _float("loraplus_ratio", "LoRA+ ratio (lr of B / lr of A)", 1.0)
        _float("clip_norm", "Clip gradient norm (0 = off)", 0.5)
        _int("eval_every", "Validate every n steps")


def render() -> Config:
    """Draw the sidebar and return the session's valid config (the URL follows it)."""
    if CONFIG not in st.session_state:
        config, problems = config_from_query(st.query_params.to_dict())
        _seed(config, overwrite=True)
        for sentence in problems:
            st.toast(sentence, icon="⚠️")
    with st.sidebar:
        st.selectbox("Modality", list(MODALITY_LABELS), key=KEY("modality"), format_func=MODALITY_LABELS.get,
                     on_change=_on_modality_change)
        st.selectbox("Load a preset", [NO_PRESET] + list(PRESETS), key="preset_picker", on_change=_on_preset_pick,
                     help="Ready experiments; `seed` is the original toy.")
        st.subheader("Data and base model")
        _data_widgets(st.session_state[KEY("modality")])
        st.subheader("Adapter")
        _adapter_widgets()
        st.subheader("Training")
        _optimizer_widgets()
        # widgets of other modalities are not drawn, and Streamlit forgets their state: keep the last values
        last = st.session_state[CONFIG].to_dict()
        values = {name: st.session_state.get(KEY(name), last[name]) for name in last}
        try:
            config = Config.from_dict(values)
            st.session_state[CONFIG] = config
        except ConfigError as error:
            st.error(f"{error} The last valid settings are still in use.")
            config = st.session_state[CONFIG]
    query = config_to_query(config)
    query.update({k: v for k, v in st.query_params.to_dict().items() if k in PAGE_PARAMS})
    if st.query_params.to_dict() != query:
        st.query_params.from_dict(query)
    return config


def current_config() -> Config:
    """The config the sidebar holds (pages call this after app.py has drawn the sidebar)."""
    return st.session_state[CONFIG]
