"""Parameter savings: what LoRA trains in the model in hand, and on real transformers."""
from __future__ import annotations

import math

import streamlit as st

from lab_ui import figures, panels, session, sidebar
from lab_ui.figures import human_bytes, human_count
from lora_core import ConfigError
from lora_core.accounting import ARCHITECTURES, TARGETS, layer_table, savings
from lora_core.config import OPTIMIZERS

RANKS = [1, 2, 4, 8, 16, 32, 64, 128, 256]
TARGET_LABELS = {"q": "q (query)", "k": "k (key)", "v": "v (value)", "o": "o (attention output)",
                 "mlp": "mlp (feed-forward)"}




def layer_rows(model) -> list[dict]:
    rows = []
    for row in layer_table(model):
        rows.append({"layer": row.path, "kind": row.kind, "d_in": row.d_in, "d_out": row.d_out,
                     "rank": row.rank or None, "frozen": row.frozen, "trainable": row.trainable, "full": row.full,
                     "% of full": row.percent_of_full,
                     "reduction": row.reduction if math.isfinite(row.reduction) else None})
    return rows


COUNT = st.column_config.NumberColumn(format="localized")
LAYER_COLUMNS = {
    "layer": st.column_config.TextColumn("layer", help="The module's path in the model.", pinned=True),
    "kind": st.column_config.TextColumn("kind", help="lora = a frozen linear layer with an adapter."),
    "d_in": COUNT, "d_out": COUNT,
    "rank": st.column_config.NumberColumn("rank", help="LoRA rank r (— : no adapter)."),
    "frozen": COUNT,
    "trainable": st.column_config.NumberColumn("trainable", format="localized",
                                               help="For a LoRA layer: r·(d_in + d_out)."),
    "full": st.column_config.NumberColumn("full", format="localized",
                                          help="What full fine-tuning trains in this layer: d_in·d_out (+ bias)."),
    "% of full": st.column_config.ProgressColumn("% of full", min_value=0, max_value=100, format="%.1f%%"),
    "reduction": st.column_config.NumberColumn(
        "reduction", format="%.1f×", help="How many times fewer numbers are trained (— : nothing trained here)."),
}


def this_model() -> None:
    st.header("This model")
    config = sidebar.current_config()
    run = session.current_run(config)
    if run is None:
        st.error(f"These settings cannot build a model: {session.lab().error}")
        return
    st.caption(f"{run.task.description} One row per layer; change the rank or the target layers in the sidebar.")
    st.dataframe(layer_rows(run.model), hide_index=True, column_config=LAYER_COLUMNS, key="layer_table",
                 placeholder="—")
    panels.parameter_summary(run)
    if config.modality == "multimodal":
        panels.chart(figures.param_split_figure(run.model.parameter_breakdown()), "branch_split")


def memory_rows(s) -> list[dict]:
    adapter_weights = s.lora_params * (s.model_bytes // s.total_params)
    return [
        {"label": "full fine-tuning", "weights": s.model_bytes, "gradients": s.full_ft_gradient_bytes,
         "optimizer": s.full_ft_optimizer_bytes},
        {"label": f"LoRA r={s.rank}", "weights": s.model_bytes + adapter_weights, "gradients": s.lora_gradient_bytes,
         "optimizer": s.lora_optimizer_bytes},
    ]


def table_row(s) -> dict:
    return {"model": ARCHITECTURES[s.arch].label, "LoRA trainable": s.lora_params, "% of the model": s.percent,
            "fewer params": s.reduction, "adapter fp16": human_bytes(s.adapter_bytes_fp16),
            "optimizer state, LoRA": human_bytes(s.lora_optimizer_bytes),
            "optimizer state, full": human_bytes(s.full_ft_optimizer_bytes)}


REAL_COLUMNS = {
    "model": st.column_config.TextColumn("model", pinned=True),
    "LoRA trainable": st.column_config.NumberColumn("LoRA trainable", format="localized"),
    "% of the model": st.column_config.NumberColumn("% of the model", format="%.4f%%"),
    "fewer params": st.column_config.NumberColumn("fewer params", format="%.0f×",
                                                  help="Full fine-tuning's trainable parameters / LoRA's."),
}


def real_models() -> None:
    st.header("Real models")
    st.caption("The same arithmetic on real transformers: a rank-r adapter on every chosen matrix of every block.")
    c1, c2 = st.columns([1, 2])
    arch = c1.selectbox("Architecture", list(ARCHITECTURES), format_func=lambda k: ARCHITECTURES[k].label,
                        key="sav_arch")
    targets = c2.multiselect("Target modules", list(TARGETS), default=["q", "v"], format_func=TARGET_LABELS.get,
                             key="sav_targets")
    c1, c2 = st.columns([2, 1])
    rank = c1.select_slider("Rank r", RANKS, value=8, key="sav_rank")
    optimizer = c2.selectbox("Optimizer", OPTIMIZERS, index=OPTIMIZERS.index("adam"),
                             format_func=sidebar.LABELS["optimizer"].get, key="sav_optimizer")
    if not targets:
        st.warning("Pick at least one target module: LoRA needs a matrix to adapt.")
        return
    try:
        s = savings(arch, targets, rank, optimizer=optimizer)
    except ConfigError as error:
        st.warning(str(error))
        return

    state = sidebar.LABELS["optimizer"][optimizer]
    with panels.metric_row():  # side by side, wrapping on a phone
        st.metric("Trainable parameters", human_count(s.lora_params), help=f"{s.lora_params:,} exactly")
        st.metric("% of the model", f"{s.percent:.3g}%", help=f"of {human_count(s.total_params)} parameters: "
                  f"{s.reduction:,.0f}× fewer than full fine-tuning")
        st.metric("Adapter file", human_bytes(s.adapter_bytes_fp16), help="Tensors in fp16 / bf16.")
    with panels.metric_row():
        st.metric("Adapter file in fp32", human_bytes(s.adapter_bytes_fp32))
        st.metric(f"{state} state, LoRA", human_bytes(s.lora_optimizer_bytes))
        st.metric(f"{state} state, full fine-tuning", human_bytes(s.full_ft_optimizer_bytes))
    st.caption(f"{s.lora_params:,} trainable parameters. Memory assumes weights and gradients in fp16 and the "
               "optimizer state in fp32, as mixed-precision training keeps them; activations are not counted.")

    rows, problems = [], []
    for name in ARCHITECTURES:
        try:
            rows.append(savings(name, targets, rank, optimizer=optimizer))
        except ConfigError as error:
            problems.append(f"{ARCHITECTURES[name].label}: {error}")
    st.subheader(f"All three models, {' + '.join(s.targets)} at r = {rank}")
    st.dataframe([table_row(row) for row in rows], hide_index=True, column_config=REAL_COLUMNS, key="real_table")
    for sentence in problems:
        st.warning(sentence)
    st.caption("The GPT-3 175B row with q + v at r = 8 gives 37,748,736 trainable parameters: the 37.7M of the "
               "LoRA paper (Hu et al., 2021, Table 4), about 0.02% of the model.")
    left, right = st.columns(2)
    with left:
        panels.chart(figures.savings_figure([{"label": ARCHITECTURES[row.arch].label, "full": row.full_ft_params,
                                      "lora": row.lora_params} for row in rows]), "savings_chart")
    with right:
        panels.chart(figures.memory_figure(memory_rows(s)), "memory_chart")
        st.caption(f"{ARCHITECTURES[arch].label}: both methods hold the whole model's weights; LoRA saves the "
                   "gradients and the optimizer state.")


st.title("Parameter savings")
this_model()
st.divider()
real_models()
