"""Compare: the same data and seed with one setting varied (ranks, optimizers or fusions), live."""
import io

import numpy as np
import pandas as pd
import streamlit as st

from lab_ui import compare, figures, panels, session, sidebar
from lora_core import ConfigError, Run
from lora_core.config import OPTIMIZERS
from lora_core.models import FUSIONS

STATE = "compare_state"
config = sidebar.current_config()
state = st.session_state.setdefault(STATE, {"entries": [], "playing": False, "kind": None, "config": None})

st.title("Compare")
kinds = list(compare.KINDS)
if config.modality != "multimodal" or config.is_toy:
    kinds.remove("fusion")
wanted = st.query_params.get("compare", "rank")
kind = st.segmented_control("Vary", kinds, default=wanted if wanted in kinds else "rank",
                            format_func=compare.KINDS.get, key="compare_kind") or "rank"
st.query_params["compare"] = kind

seeds = 1
with st.container(border=True):
    if kind == "rank":
        c1, c2 = st.columns([3, 2])
        values = c1.multiselect("Ranks", compare.RANK_CHOICES, default=[1, 2, 4, 8, 16], key="compare_ranks")
        baselines = c2.multiselect("Baselines", compare.BASELINES, default=["full"], key="compare_baselines",
                                   format_func={"full": "full fine-tuning", "head": "head only"}.get)
    elif kind == "optimizer":
        values = st.multiselect("Optimizers", OPTIMIZERS, default=["sgd", "adam", "adamw"], key="compare_opts")
        baselines = []
        st.caption(f"All at the sidebar's learning rate ({config.lr:g}); AdamW uses weight decay "
                   f"{config.weight_decay or 0.01:g}.")
    else:
        values = st.multiselect("Fusions", FUSIONS, default=list(FUSIONS), key="compare_fusions")
        baselines = []
    seeds = st.slider("Seeds per setting (spread)", 1, 5, 1, key="compare_seeds",
                      help="Several seeds show how much of a difference is luck.")
    start_col, stop_col = st.columns(2)
    start = start_col.button("Run comparison", icon=":material/play_arrow:", type="primary", width="stretch")
    if stop_col.button("Stop", icon=":material/stop:", width="stretch", disabled=not state["playing"]):
        state["playing"] = False

if start:
    base = config.replace(weight_decay=config.weight_decay or 0.01) if kind == "optimizer" else config
    entries = compare.plan(base, kind, sorted(values) if kind == "rank" else values, baselines=baselines,
                           seeds=seeds)
    for entry in entries:
        if entry.error:
            continue
        try:
            entry.run = Run(entry.config, session.get_task(entry.config))
        except ConfigError as error:
            entry.error = str(error)
    state.update(entries=entries, playing=True, kind=kind, config=config)

entries = state["entries"]
if not entries:
    st.info("Choose what to vary, then press **Run comparison**. Every run uses the same data and seed.")
    st.stop()
if state["config"] != config:
    st.caption("The sidebar settings changed since this comparison ran: press **Run comparison** to redo it.")


def curves(entries, log_y):
    out = []
    for label in dict.fromkeys(e.label for e in entries):
        runs = [e.run for e in entries if e.label == label and e.run is not None and len(e.run.history)]
        if not runs:
            continue
        n = min(len(r.history) for r in runs)
        smooth = np.array([figures.ema(r.history.array("train_loss")[:n], 0.6) for r in runs])
        curve = {"label": label, "steps": runs[0].history.array("step")[:n], "loss": smooth.mean(axis=0)}
        if len(runs) > 1:
            curve.update(band_low=smooth.min(axis=0), band_high=smooth.max(axis=0))
        out.append(curve)
    return figures.compare_figure(out, log_y=log_y)


@st.fragment(run_every=session.REDRAW_SECONDS if state["playing"] else None)
def live():
    was_playing = state["playing"]
    active = [e.run for e in entries if e.run is not None and not e.run.done]
    if was_playing and active:
        for run in active:  # one time budget for the whole comparison, shared fairly
            run.run_for(session.CHUNK_SECONDS / len(active))
    if was_playing and all(e.run is None or e.run.done for e in entries):
        state["playing"] = False
    log_y = st.toggle("Log scale", value=True, key="compare_log")
    panels.chart(curves(entries, log_y), key="compare_curves")
    rows = compare.results(entries)
    table = pd.DataFrame([r for r in rows if "trainable_params" in r])
    for row in rows:
        if row.get("error"):
            st.warning(f"{row['label']}: {row['error']}")
    if not table.empty:
        metric = state["entries"][0].run.task.metric if state["entries"][0].run else None
        metric_label = {"accuracy": "val accuracy", "bpc": "val bits/char"}.get(metric)
        if metric == "accuracy":
            table["metric"] = 100 * table["metric"]
        shown = ["label", "trainable_params", "percent_of_full", "final_train_loss", "final_val_loss"]
        shown += ["metric"] if metric_label else []
        shown += ["seconds", "steps_per_second", "steps", "status"]
        st.dataframe(table[shown], hide_index=True, width="stretch", column_config={
            "label": "run", "trainable_params": st.column_config.NumberColumn("trainable", format="localized"),
            "percent_of_full": st.column_config.ProgressColumn("% of full", min_value=0, max_value=100,
                                                               format="%.2f%%"),
            "final_train_loss": st.column_config.NumberColumn("train loss", format="%.4g"),
            "final_val_loss": st.column_config.NumberColumn("val loss", format="%.4g"),
            "metric": st.column_config.NumberColumn(metric_label or "", format="%.2f" if metric == "bpc" else "%.1f%%"),
            "seconds": st.column_config.NumberColumn("time (s)", format="%.2f"),
            "steps_per_second": st.column_config.NumberColumn("steps/s", format="%.0f"),
        })
        if state["kind"] == "rank":
            points = [{"label": r["label"], "params": r["trainable_params"], "loss": r["final_val_loss"],
                       "loss_std": r["val_loss_std"] if r["seeds"] > 1 else None, "method": r["method"]}
                      for r in rows if "trainable_params" in r]
            panels.chart(figures.params_vs_loss_figure(points), key="compare_pvl")
    if was_playing and not state["playing"]:
        st.rerun()


live()

rows = [r for r in compare.results(entries) if "trainable_params" in r]
if rows:
    buffer = io.StringIO()
    pd.DataFrame(rows).to_csv(buffer, index=False)
    st.download_button("Download results (CSV)", buffer.getvalue(), file_name=f"lora-lab-compare-{state['kind']}.csv",
                       mime="text/csv", on_click="ignore", icon=":material/download:")
