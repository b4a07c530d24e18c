"""Train (live): play, pause, step, reset; curves stream while the model adapts."""
import streamlit as st

from lab_ui import panels, session, sidebar

config = sidebar.current_config()
lab = session.lab()
run = session.current_run(config)

st.title("Train (live)")
if run is None:
    st.error(f"These settings cannot run: {lab.error}")
    st.stop()
st.caption(run.task.description)

play_col, step_col, reset_col, pace_col, smooth_col, log_col = st.columns([1, 1, 1, 1.3, 1.6, 1],
                                                                         vertical_alignment="bottom")
if lab.playing:
    play_col.button("Pause", icon=":material/pause:", on_click=session.pause, width="stretch", type="primary")
else:
    play_col.button("Play", icon=":material/play_arrow:", on_click=session.play, width="stretch", type="primary",
                    disabled=run.done)
if step_col.button("Step", icon=":material/skip_next:", width="stretch", disabled=run.done or lab.playing,
                   help="Train one step."):
    run.step(1)
reset_col.button("Reset", icon=":material/restart_alt:", on_click=session.reset, args=(config,), width="stretch",
                 help="Start this experiment again from the frozen base (the old curve stays, faded).")
pace = pace_col.segmented_control("Pace", ["watch", "fastest"], default="watch", key="pace",
                                  help="watch: a fast run is spread over a few seconds so you can see it.")
smoothing = smooth_col.slider("Smoothing", 0.0, 0.99, 0.6, 0.01, key="smoothing")
log_y = log_col.toggle("Log scale", value=True, key="log_y")


@st.cache_data(max_entries=64, show_spinner=False)
def base_score(task_key: tuple, _run) -> float | None:
    """The frozen base's validation metric on the target domain: the 'before' line."""
    scores = _run.task.base_scores()
    return scores.get("accuracy", scores.get("bpc"))


def draw_live(where) -> None:
    """Status, live numbers and charts, into one placeholder (replaced on every redraw)."""
    with where.container():
        if run.status == "diverged":
            st.error(run.message, icon=":material/warning:")
        elif run.done:
            st.success(f"Done: {run.step_count:,} steps in {run.train_time:.1f} s of training.")
        panels.live_numbers(run)
        left, right = st.columns([3, 2]) if run.task.metric else (st.container(), None)
        with left:
            same_task = [r for r in lab.previous if r.config.task_key() == config.task_key()]
            panels.loss_chart(run, smoothing=smoothing, log_y=log_y, previous=same_task[:1])
        if right is not None:
            with right:
                panels.metric_chart(run, base_score(config.task_key(), run))
        if not lab.playing and run.step_count == 0:
            st.info("Press **Play** to start training, or **Step** for one step at a time.")


@st.fragment(run_every=session.FRAME_SECONDS if lab.playing else None)
def live():
    """While playing, the timer reruns this fragment: train one frame's worth, then redraw.

    One frame per fragment run (no loop inside a run): a Pause click then never interrupts a
    half-sent frame, which under load could leave the browser with a broken page.
    """
    was_playing = lab.playing
    if was_playing:
        session.advance(run, watch=pace != "fastest")
    draw_live(st.empty())
    if was_playing and not lab.playing:
        st.rerun()  # the run ended: redraw the whole page once more, without the timer


live()

st.subheader("Parameters")
panels.parameter_summary(run)


@st.fragment(run_every=session.LEARNED_SECONDS if lab.playing else None)
def learned():
    """What the adapter has learned so far: redrawn about once a second while training."""
    st.subheader("What was learned")
    panels.learned(run)


learned()
