"""Checkpoints: download what this session trained; upload a checkpoint back to inspect, evaluate, resume,
compare or merge it.

Files are written and read by `lora_core.checkpoint` (JSON, CSV and safetensors, never pickle); an upload
stays in memory. Only the latest upload and the files of the runs on this page are kept in the session.
"""
from __future__ import annotations

import logging
from pathlib import PurePath

import streamlit as st

from lab_ui import figures, limits, panels, session, sidebar, uploads
from lab_ui.figures import human_bytes
from lora_core import CheckpointError
from lora_core import checkpoint as ck

log = logging.getLogger(__name__)
DOWNLOADS = "ckpt_downloads"  # {id(run): {"run", "steps", "status", "files"}}: the latest files of the runs shown
LOADED = "ckpt_loaded"  # the latest upload as read: {"key", "upload", "error", ...results of its actions}
GO_TRAIN = "ckpt_go_train"  # set by the resume callback: open the Train page
TRAIN_PAGE = "views/train.py"  # as app.py registers it
MAX_UPLOAD_MB = 32  # a class's server; LoRA Lab's own bundles are well under 5 MB
FILES = {  # kind: (title, file-name suffix, mime type, what it holds: for a LoRA run, for full / head runs)
    "bundle": ("Run bundle", ".zip", "application/zip",
               ("The whole run, to resume it later or inspect it: settings, weights, optimizer state, loss history "
                "and the adapter. Upload it below.",
                "The whole run, to resume it later or inspect it: settings, weights, optimizer state and loss "
                "history. Upload it below.")),
    "adapter": ("PEFT adapter", "-adapter.zip", "application/zip",
                ("adapter_config.json + adapter_model.safetensors: the adapter alone, as PEFT saves it.",) * 2),
    "merged": ("Merged weights", "-merged.safetensors", "application/octet-stream",
               ("The adapted model as one PyTorch state_dict, each adapter folded in: W = W0 + scale·B·A.",
                "The trained model as one PyTorch state_dict.")),
    "history": ("Loss history", "-history.csv", "text/csv",
                ("Every step: train loss, learning rate, gradient norm, and the validation scores.",) * 2),
}

if st.session_state.pop(GO_TRAIN, False):
    st.switch_page(TRAIN_PAGE)


def build(kind: str, run) -> bytes:
    if kind == "bundle":
        return ck.save_bundle(run)
    if kind == "adapter":
        return ck.adapter_zip(run)
    if kind == "merged":
        return ck.merged_weights(run)
    return run.history.to_csv().encode("utf-8")


def files_of(run, kinds) -> dict:
    """The run's download files (bytes, or the core's sentence when one cannot be written), built once per
    (run, step count, status): a rerun never serialises again."""
    cache = st.session_state.setdefault(DOWNLOADS, {})
    entry = cache.get(id(run))
    if entry is None or entry["run"] is not run or (entry["steps"], entry["status"]) != (run.step_count, run.status):
        entry = cache[id(run)] = {"run": run, "steps": run.step_count, "status": run.status, "files": {}}
    for kind in kinds:
        if kind not in entry["files"]:
            try:
                entry["files"][kind] = build(kind, run)
            except CheckpointError as error:
                entry["files"][kind] = str(error)
    return entry["files"]


def download_card(kind: str, run, data, *, unavailable: str = "") -> None:
    title, suffix, mime, what = FILES[kind]
    what = what[run.config.method != "lora"]
    name = uploads.file_stem(run.config, run.step_count) + suffix
    with st.container(border=True):
        st.markdown(f"**{title}**" + ("" if unavailable or isinstance(data, str) else f" · {human_bytes(len(data))}"))
        st.caption(what)
        if isinstance(data, str):  # the core's sentence: e.g. a diverged run has nothing finite to save
            st.warning(data)
        elif unavailable:
            st.download_button("Not available", b"", disabled=True, key=f"dl_{kind}", help=unavailable,
                               width="stretch")
            st.caption(unavailable)
        else:
            st.download_button(name, data, file_name=name, mime=mime, on_click="ignore", key=f"dl_{kind}",
                               icon=":material/download:", width="stretch")


def spectra_chart(summary: dict, rank) -> None:
    series = uploads.spectra(summary)
    if not series:
        st.caption("No adapter layers, so no low-rank update to show.")
        return
    fig = figures.singular_values_figure(series, rank=rank, height=300)
    fig.update_layout(title_text="Singular values of each layer's dW")
    if rank is not None:  # room right of the "rank r" line for its label, which sits at the last index
        fig.update_xaxes(range=[0.4, rank + 1.5], tickvals=list(range(1, rank + 1, -(-rank // 8))))
    st.plotly_chart(fig, theme=None, width="stretch", key="ckpt_spectra")
    st.caption("dW = scale·B·A has at most r non-zero singular values; how fast they fall shows how much of "
               "the rank the update really uses.")


def table(rows) -> None:
    st.dataframe(rows, hide_index=True, width="stretch")


def read(upload, config_file) -> dict:
    """The upload as read, kept for reruns under its file id; only the latest upload is kept."""
    key = (upload.file_id, config_file.file_id if config_file is not None else None)
    record = st.session_state.get(LOADED)
    if record is None or record["key"] != key:
        record = {"key": key, "upload": None, "error": "", "needs_config": False}
        try:
            with st.spinner("Reading the checkpoint…"):
                record["upload"] = uploads.read_upload(
                    upload.name, upload.getvalue(), task_for=session.get_task,
                    adapter_config=config_file.getvalue() if config_file is not None else None)
        except uploads.NeedsAdapterConfig as error:
            record["error"], record["needs_config"] = str(error), True
        except Exception as error:  # CheckpointError has its sentence; anything else gets one general sentence
            if not isinstance(error, CheckpointError):
                log.exception("An upload could not be read")
            record["error"] = uploads.error_sentence(error)
        st.session_state[LOADED] = record
    return record


def resume(run) -> None:
    """Callback: the uploaded run becomes the session's run, with the sidebar showing its settings."""
    session.adopt(run)
    sidebar.use_config(run.config)  # so the sidebar's config is the run's and the run stays current
    st.session_state.pop(LOADED, None)  # the session owns it now: not kept twice
    st.session_state[GO_TRAIN] = True


def evaluate(record: dict, run) -> None:
    with st.spinner("Evaluating on the whole validation set…"):
        record["evaluation"] = uploads.score_rows(run.task.metric, {
            "frozen base (before adaptation)": run.task.base_scores(), "uploaded model": run.evaluate()})


def evaluate_adapter(record: dict, adapted, current) -> None:
    with st.spinner("Evaluating on the whole validation set…"):
        record["adapter_evaluation"] = (current.config, uploads.score_rows(adapted.task.metric, {
            "frozen base (before adaptation)": adapted.task.base_scores(),
            "frozen base + uploaded adapter": adapted.evaluate(),
            f"current run ({current.step_count:,} steps)": current.evaluate()}))


config = sidebar.current_config()
lab = session.lab()
run = session.current_run(config)

st.title("Checkpoints")
st.caption("Take what you trained with you, in files other tools read, or bring a checkpoint back to look "
           "inside it, evaluate it, resume it, compare it or merge it.")

# == Download =======================================================================================
st.header("Download")
if run is None:
    st.error(f"These settings cannot run: {lab.error}")
else:
    st.markdown(f"The current run: **{panels.describe(run.config)}**, {run.config.modality}, "
                f"{run.step_count:,} of {run.config.steps:,} steps ({run.status}).")
    if run.step_count == 0:
        st.info("This run has not trained yet: **train first** on the Train page. The run bundle below still "
                "saves its settings and its starting point.")
    lora = run.config.method == "lora"
    files = files_of(run, ["bundle", "adapter", "merged", "history"] if lora else ["bundle", "merged", "history"])
    top, bottom = st.columns(2), st.columns(2)
    with top[0]:
        download_card("bundle", run, files["bundle"])
    with top[1]:
        download_card("adapter", run, files.get("adapter", b""), unavailable="" if lora else (
            f"No adapter: this run trains {'all weights' if run.config.method == 'full' else 'the head only'}, "
            f"so there is nothing in PEFT's layout; the merged weights hold what it learned."))
    with bottom[0]:
        download_card("merged", run, files["merged"])
    with bottom[1]:
        download_card("history", run, files["history"])

    with st.expander("How to load these files in PyTorch" + (" with PEFT" if lora else "")):
        if lora:
            layers = ", ".join(f"`{path}`" for path in run.trained_paths)
            st.markdown(
                "**The PEFT layout.** The adapter zip holds `adapter_config.json` (r, lora_alpha, the target "
                "modules) and `adapter_model.safetensors`: for each adapted layer, "
                "`base_model.model.<layer>.lora_A.weight` (r × d_in) and `….lora_B.weight` (d_out × r), float32, "
                "stored as trained; PEFT applies the scale lora_alpha / r itself. Unzipped into a folder, it loads "
                f"with `PeftModel.from_pretrained` onto a PyTorch model whose modules have the same names as here "
                f"({layers}), holding the base weights from the bundle's `model.safetensors`:")
        else:
            st.markdown("The merged weights are a PyTorch `state_dict` for a model with the same module names:")
        st.code(uploads.peft_snippet(run, uploads.file_stem(run.config, run.step_count)), language="python")

shown = [run] if run is not None else []
if lab.previous:
    st.subheader("Earlier runs of this session")
    st.caption(f"Runs you replaced (the last {session.KEEP_PREVIOUS} are kept), so nothing you trained is lost.")
    for i, earlier in enumerate(lab.previous):
        data = files_of(earlier, ["bundle"])["bundle"]
        name = uploads.file_stem(earlier.config, earlier.step_count) + ".zip"
        text, button = st.columns([3, 2], vertical_alignment="center")
        scores = ", ".join(f"{k.removeprefix('final ')} {v}" for k, v in uploads.final_losses(earlier).items()
                           if k != "final train loss" and v != "—")
        text.markdown(f"{panels.describe(earlier.config)}, {earlier.config.modality}: "
                      f"{earlier.step_count:,} steps ({earlier.status}){', ' + scores if scores else ''}")
        if isinstance(data, str):
            button.warning(data)
        else:
            button.download_button(f"Bundle · {human_bytes(len(data))}", data, file_name=name, mime="application/zip",
                                   on_click="ignore", key=f"dl_previous_{i}", icon=":material/download:",
                                   width="stretch")
    shown += lab.previous
cache = st.session_state.get(DOWNLOADS, {})
for key in [k for k, entry in cache.items() if not any(entry["run"] is r for r in shown)]:
    del cache[key]  # bounded: the files of runs no longer on this page are dropped

# == Upload =========================================================================================
st.header("Upload")
upload = st.file_uploader(
    "A LoRA Lab run bundle, a PEFT adapter zip, or an adapter_model.safetensors", type=["zip", "safetensors"],
    key="ckpt_file", max_upload_size=MAX_UPLOAD_MB,
    help="Read in memory, checked before use, never unpickled or executed: JSON, CSV and safetensors only.")
if upload is None:
    st.session_state.pop(LOADED, None)
    st.stop()

config_file = None
upload.seek(0)
if uploads.is_bare_safetensors(upload.name, upload.read(4)):
    config_file = st.file_uploader("Its adapter_config.json (r and lora_alpha are in it)", type=["json"],
                                   key="ckpt_config_file", max_upload_size=1)
record = read(upload, config_file)
if record["needs_config"]:
    st.info(record["error"])
    st.stop()
if record["error"]:
    st.error(record["error"], icon=":material/error:")
    st.stop()

up = record["upload"]
if up.kind == "bundle":
    mine = up.run
    st.success(f"**{up.name}** ({human_bytes(up.size)}) is a {uploads.KINDS[up.kind]}: "
               f"{panels.describe(mine.config)}, {mine.config.modality}, {mine.step_count:,} steps.")
    for column, (label, value) in zip(st.columns(3), uploads.final_losses(mine).items()):
        column.metric(label.capitalize(), value)
    left, right = st.columns([2, 3])
    with left:
        table(uploads.bundle_rows(mine))
    with right:
        spectra_chart(up.summary, mine.config.rank if mine.config.method == "lora" else None)
    rows = uploads.tensor_rows(up)
    with st.expander(f"Tensors: {len(rows)} in the model, {up.summary['tensors']['optimizer']['count']} of "
                     f"optimizer state"):
        table(rows)

    st.subheader("What to do with it")
    problem = limits.sidebar_problem(mine.config)
    evaluate_col, resume_col = st.columns(2)
    evaluate_col.button("Evaluate", key="ckpt_evaluate", on_click=evaluate, args=(record, mine),
                        icon=":material/fact_check:", width="stretch",
                        help="Its validation loss and score on its task, next to the frozen base's.")
    resume_col.button("Resume on the Train page", key="ckpt_resume", on_click=resume, args=(mine,),
                      disabled=problem is not None, icon=":material/play_arrow:", width="stretch",
                      type="primary", help=problem or "It becomes this session's run, with its settings in the "
                      "sidebar; the current run is kept under earlier runs.")
    if problem:
        st.caption(problem)
    if record.get("evaluation"):
        table(record["evaluation"])
    with st.expander("Compare with the current run"):
        if run is None:
            st.caption("The current settings cannot run, so there is nothing to compare with.")
        else:
            table(uploads.compare_rows(mine, run))
else:
    adapter = up.adapter
    st.success(f"**{up.name}** ({human_bytes(up.size)}) is a {uploads.KINDS[up.kind]}: r={adapter.rank}, "
               f"lora_alpha={adapter.alpha:g}, on {', '.join(adapter.target_modules)}.")
    left, right = st.columns([2, 3])
    with left:
        table(uploads.adapter_rows(adapter))
    with right:
        spectra_chart(up.summary, adapter.rank)
    rows = uploads.tensor_rows(up)
    with st.expander(f"Tensors ({len(rows)})"):
        table(rows)

    st.subheader("On the current model")
    if run is None:
        st.info(f"The current settings cannot run ({lab.error}), so the adapter has no model to go on.")
        st.stop()
    fitted = record.get("fitted")
    if fitted is None or fitted[0] != config:
        try:
            fitted = (config, uploads.adapter_run(adapter, config, session.get_task(config)), "")
        except CheckpointError as error:
            fitted = (config, None, str(error))
        record["fitted"] = fitted
    adapted, mismatch = fitted[1], fitted[2]
    if mismatch:
        st.warning(mismatch)
        st.stop()
    st.caption(f"Its layers and shapes match the current {config.modality} model: it can go on that model's "
               f"frozen base. (An adapter trained with PiSSA belongs on its own residual base, which only its run "
               f"bundle holds.)")
    if "merged" not in record or record["merged"][0] != config:
        record["merged"] = (config, ck.merged_weights(adapted))
    merged = record["merged"][1]
    evaluate_col, merge_col = st.columns(2)
    evaluate_col.button("Evaluate on the current task", key="ckpt_evaluate_adapter", on_click=evaluate_adapter,
                        args=(record, adapted, run), icon=":material/fact_check:", width="stretch")
    merged_name = f"lora-lab-{config.modality}-merged-{PurePath(up.name).stem}.safetensors"
    merge_col.download_button(f"Merge into the current base · {human_bytes(len(merged))}", merged,
                              file_name=merged_name, mime="application/octet-stream", on_click="ignore",
                              key="dl_merged_adapter", icon=":material/download:", width="stretch",
                              help="The frozen base with this adapter folded in, as a PyTorch state_dict.")
    evaluation = record.get("adapter_evaluation")
    if evaluation and evaluation[0] == config:
        table(evaluation[1])
