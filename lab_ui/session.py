"""Per-session run control: the one place that creates, advances and resets runs.

Everything a user owns lives in `st.session_state` (isolated per browser tab);
the tasks (data + frozen base) are shared read-only through `st.cache_resource`.
A run is never thrown away silently: when the settings change, the old run is
kept as a faded "previous run" curve, and the last few stay downloadable.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import streamlit as st

from lora_core import Config, ConfigError, Run
from lora_core.tasks import Task, build_task

CHUNK_SECONDS = 0.12  # training time per frame at the "fastest" pace
FRAME_SECONDS = 0.15  # the live fragment's timer: at most ~6-7 frames a second
REDRAW_SECONDS = 0.25  # the compare page's timer
LEARNED_SECONDS = 1.0  # the heavier "what was learned" panel redraws less often while playing
WATCH_SECONDS = 6.0  # "watch" pace: a run that could finish faster is spread over about this long
KEEP_PREVIOUS = 3  # earlier runs kept per session (curves and downloads); bounds a session's memory
TASK_CACHE_ENTRIES = 16  # shared tasks kept in the server's memory, across all sessions


@st.cache_resource(max_entries=TASK_CACHE_ENTRIES, show_spinner="Preparing the data and the frozen base model…")
def _cached_task(task_key: tuple, _config: Config) -> Task:
    return build_task(_config)


def get_task(config: Config) -> Task:
    """The shared, read-only task for this config (built once per server for each data/base choice)."""
    return _cached_task(config.task_key(), config)


@dataclass
class Lab:
    """What one browser session owns."""

    run: Run | None = None
    playing: bool = False
    error: str = ""
    previous: list[Run] = field(default_factory=list)
    last_advance: float = 0.0  # monotonic time of the last paced training step (watch pace)


def lab() -> Lab:
    if "lab" not in st.session_state:
        st.session_state["lab"] = Lab()
    return st.session_state["lab"]


def current_run(config: Config) -> Run | None:
    """The session's run for `config`: the same object across reruns, a new one when the settings change.

    Returns None (and sets `lab().error` to a sentence) when the settings are impossible.
    """
    state = lab()
    if state.run is not None and state.run.config == config:
        return state.run
    try:
        run = Run(config, get_task(config))
    except ConfigError as error:
        state.error = str(error)
        state.playing = False
        return None
    state.error = ""
    _archive(state.run)
    state.run = run
    return run


def _archive(run: Run | None) -> None:
    """Keep a run that trained at least one step as a previous run (newest first)."""
    if run is None or run.step_count == 0:
        return
    state = lab()
    state.previous = [run] + [r for r in state.previous if r is not run][: KEEP_PREVIOUS - 1]


def adopt(run: Run) -> None:
    """Make `run` (e.g. loaded from a checkpoint) the session's current run."""
    state = lab()
    _archive(state.run)
    state.run, state.playing, state.error = run, False, ""


def play() -> None:
    state = lab()
    state.playing, state.last_advance = True, 0.0


def pause() -> None:
    lab().playing = False


def reset(config: Config) -> None:
    """A fresh run of the same settings; the old one is kept as a previous run."""
    state = lab()
    _archive(state.run)
    state.run, state.playing = None, False
    current_run(config)


def advance(run: Run, *, watch: bool = True) -> None:
    """Train one frame's worth; stop playing when the run ends.

    With `watch`, a run goes at steps / WATCH_SECONDS steps per second of wall time, so a fast run
    takes a few seconds and a class can see the curve form; otherwise it trains for CHUNK_SECONDS.
    A slow run goes as fast as it can either way.
    """
    state = lab()
    if not run.done:
        if watch:
            now = time.monotonic()
            elapsed = min(now - state.last_advance, 0.5) if state.last_advance else FRAME_SECONDS
            state.last_advance = now
            run.step(max(1, round(run.config.steps / WATCH_SECONDS * elapsed)), seconds=CHUNK_SECONDS)
        else:
            run.step(run.config.steps, seconds=CHUNK_SECONDS)
    if run.done:
        state.playing = False
