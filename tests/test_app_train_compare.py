"""The Train and Compare pages and the sidebar/URL, driven headless through Streamlit's AppTest."""
from __future__ import annotations

import pytest

from lab_ui.urlstate import config_from_query, config_to_query
from lora_core import MODALITIES, default_config, preset_config
from tests.apptools import metric, open_app

PAGES = ("views/home.py", "views/train.py", "views/compare.py", "views/savings.py", "views/checkpoints.py",
         "views/learn.py")


def lab(at):
    return at.session_state["lab"]


def button(at, label):
    return next(b for b in at.button if b.label == label)


@pytest.mark.parametrize("modality", MODALITIES)
@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_for_every_modality(page, modality):
    at = open_app(page, modality=modality)
    assert not at.exception, at.exception
    assert at.session_state["config"].modality == modality


def test_a_widget_changes_the_config_and_the_url_restores_it():
    at = open_app("views/train.py")
    rank = next(w for w in at.number_input if w.label == "Rank r")
    rank.set_value(7).run()
    assert at.session_state["config"].rank == 7
    assert at.query_params["rank"] == ["7"] or at.query_params["rank"] == "7"
    # a fresh session opened from that URL has the same experiment
    query = {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}
    again = open_app("views/train.py", **query)
    assert again.session_state["config"] == at.session_state["config"]


def test_url_round_trip_for_every_preset():
    from lora_core import PRESETS

    for name in PRESETS:
        config = preset_config(name)
        restored, problems = config_from_query(config_to_query(config))
        assert restored == config and not problems, name


def test_a_bad_link_is_explained_and_the_rest_applies():
    config, problems = config_from_query({"modality": "image", "rank": "lots", "lr": "0.02"})
    assert config.modality == "image" and config.lr == 0.02 and config.rank == default_config("image").rank
    assert len(problems) == 1 and "rank" in problems[0]
    at = open_app("views/train.py", modality="image", rank="lots")
    assert not at.exception


def test_impossible_settings_get_a_sentence_not_a_traceback():
    at = open_app("views/train.py", modality="multimodal", targets="nothing.here")
    assert not at.exception
    assert any("match no linear layer" in e.value for e in at.error)


def test_step_and_play_advance_the_run_and_reset_clears_it():
    at = open_app("views/train.py")
    assert lab(at).run.step_count == 0
    button(at, "Step").click().run()
    assert lab(at).run.step_count == 1 and len(lab(at).run.history) == 1
    assert metric(at, "Step").startswith("1 /")
    button(at, "Play").click().run()  # the live fragment trains one chunk on this rerun
    playing_run = lab(at).run
    assert playing_run.step_count > 1
    steps = playing_run.step_count
    if lab(at).playing:
        button(at, "Pause").click().run()
        assert not lab(at).playing
    button(at, "Reset").click().run()
    assert lab(at).run is not playing_run and lab(at).run.step_count == 0
    assert lab(at).previous[0] is playing_run and playing_run.step_count == steps  # nothing trained is lost


def test_changing_a_setting_starts_a_new_run_and_keeps_the_old_one():
    at = open_app("views/train.py")
    button(at, "Step").click().run()
    first = lab(at).run
    next(w for w in at.number_input if w.label == "Rank r").set_value(2).run()
    assert lab(at).run is not first and lab(at).run.config.rank == 2
    assert lab(at).previous[0] is first


def test_a_diverging_run_says_why():
    at = open_app("views/train.py", optimizer="sgd", lr="8")
    button(at, "Play").click().run()
    for _ in range(10):  # each rerun is one tick of the live fragment
        if lab(at).run.done:
            break
        at.run()
    run = lab(at).run
    assert run.status == "diverged"
    assert any("diverged at step" in e.value for e in at.error)
    assert not at.exception


def test_compare_yields_one_row_per_rank_plus_baselines():
    at = open_app("views/compare.py", syn_d_in="16", syn_d_out="16", syn_true_rank="4", steps="60")
    ranks = next(w for w in at.multiselect if w.label == "Ranks")
    ranks.set_value([1, 2, 4]).run()
    button(at, "Run comparison").click().run()
    state = at.session_state["compare_state"]
    for _ in range(20):
        if not state["playing"]:
            break
        at.run()
    labels = [e.label for e in state["entries"]]
    assert labels == ["r=1", "r=2", "r=4", "full"]
    table = next(df.value for df in at.dataframe if "label" in df.value.columns)
    assert list(table["label"]) == labels
    params = dict(zip(table["label"], table["trainable_params"]))
    assert params["r=1"] == 1 * (16 + 16) and params["r=4"] == 4 * 32 and params["full"] == 16 * 16
    assert not at.exception


@pytest.mark.parametrize("preset", ["digits-rotated", "text", "emoji", "seed"])
def test_playing_streams_several_frames_without_errors(preset):
    """One live run draws many frames; some repeat the same figure (no new validation point)."""
    at = open_app("views/train.py", preset=preset)
    button(at, "Play").click().run()
    assert not at.exception, at.exception
    assert lab(at).run.step_count > 0
