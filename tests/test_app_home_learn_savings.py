"""The Home, Learn and Parameter savings pages, driven headless through Streamlit's AppTest."""
from __future__ import annotations


import pytest

from streamlit.testing.v1 import AppTest  # noqa: E402

from tests.apptools import metric, open_app  # noqa: E402

LESSONS = ("Why low rank works", "Rank vs accuracy", "Optimizer race", "Adapting a language model",
           "Multimodal adapters", "The original toy")

from lora_core import LoRALinear, preset_config  # noqa: E402
from lora_core.layers import Embedding, Linear  # noqa: E402

def table(at: AppTest, first_column: str):
    """The dataframe whose first column is `first_column` (AppTest's dataframes carry no key), or None."""
    frames = [df.value for df in at.dataframe if list(df.value.columns)[:1] == [first_column]]
    return frames[0] if frames else None


def count(text: str) -> int:
    return int(text.replace(",", ""))


# -- Home ---------------------------------------------------------------------------------------
def test_home_renders_the_six_lessons():
    at = open_app()
    assert not at.exception
    assert at.title[0].value.endswith("LoRA Lab")
    subheaders = " | ".join(s.value for s in at.subheader)
    for lesson in LESSONS:
        assert lesson in subheaders
    buttons = [b for b in at.button if b.label == "Open lesson"]
    assert len(buttons) == len(LESSONS)
    links = [c.value for c in at.code]
    assert any("/train?preset=seed" in link for link in links)
    assert any("/compare?preset=synthetic&compare=optimizer" in link for link in links)
    assert any("/compare?preset=emoji&compare=fusion" in link for link in links)


def test_lesson_button_loads_the_original_toy():
    at = open_app()
    at.button(key="lesson_seed_None").click().run()
    config = at.session_state["config"]
    assert config == preset_config("seed")
    assert config.mm_dataset == "toy" and config.rank == 1 and config.optimizer == "sgd"


@pytest.mark.parametrize("key, preset, compare", [
    ("lesson_synthetic-low-rank_None", "synthetic-low-rank", None),
    ("lesson_text_None", "text", None),
    ("lesson_emoji_fusion", "emoji", "fusion"),
    ("lesson_synthetic_optimizer", "synthetic", "optimizer"),
])
def test_lesson_button_loads_its_preset_and_compare_mode(key, preset, compare):
    at = open_app()
    at.button(key=key).click().run()
    assert at.session_state["config"] == preset_config(preset)
    if compare is not None:
        assert at.query_params.get("compare") in (compare, [compare])


# -- Learn --------------------------------------------------------------------------------------
def test_learn_renders():
    at = open_app("views/learn.py")
    assert not at.exception
    assert len(at.latex) >= 8
    assert metric(at, "Output change") == "0"  # B = 0: the adapted layer equals its base exactly
    assert metric(at, "‖∂L/∂A‖") == "0" and float(metric(at, "‖∂L/∂B‖")) > 0


@pytest.mark.parametrize("d, r", [(8, 3), (32, 1), (2, 2), (20, 20)])
def test_learn_sliders_change_the_parameter_counts(d, r):
    at = open_app("views/learn.py")
    at.slider(key="learn_d").set_value(d).run()
    at.slider(key="learn_r").set_value(r).run()
    assert not at.exception
    assert count(metric(at, "LoRA params")) == r * (d + d)
    assert count(metric(at, "Full matrix")) == d * d


def test_learn_rank_follows_a_shrinking_size():
    at = open_app("views/learn.py")
    at.slider(key="learn_r").set_value(12).run()
    at.slider(key="learn_d").set_value(4).run()  # r = 12 no longer fits: it is clamped to d
    assert not at.exception
    assert at.slider(key="learn_r").value == 4
    assert count(metric(at, "LoRA params")) == 4 * 8


def test_learn_toy_floor():
    at = open_app("views/learn.py")
    assert metric(at, "Theory (4 − r)/4 · 1/3") == "0.2500"
    assert abs(float(metric(at, "Best fit, 20,000 samples")) - 0.25) < 0.01
    at.button[[b.label for b in at.button].index("Open the toy on the Train page")].click().run()
    assert at.session_state["config"] == preset_config("seed")


# -- Parameter savings --------------------------------------------------------------------------
def _linear_layers(model) -> list:
    return [m for _, m in model.named_modules() if isinstance(m, (Linear, LoRALinear, Embedding))]


@pytest.mark.parametrize("preset", ["synthetic", "seed", "digits-rotated", "text", "emoji-attention"])
def test_savings_layer_table_matches_the_model(preset):
    at = open_app("views/savings.py", preset=preset)
    assert not at.exception
    assert at.session_state["config"] == preset_config(preset)
    rows = table(at, "layer")
    model = at.session_state["lab"].run.model
    assert len(rows) == len(_linear_layers(model))
    lora = rows[rows["kind"] == "lora"]
    assert len(lora) == sum(isinstance(m, LoRALinear) for m in _linear_layers(model)) > 0
    assert (lora["trainable"] == lora["rank"] * (lora["d_in"] + lora["d_out"])).all()
    assert ((rows["% of full"] >= 0) & (rows["% of full"] <= 100)).all()


def test_savings_reproduces_the_lora_paper_gpt3_count():
    at = open_app("views/savings.py")
    at.selectbox(key="sav_arch").set_value("gpt3-175b").run()
    assert at.multiselect(key="sav_targets").value == ["q", "v"]
    assert at.select_slider(key="sav_rank").value == 8
    assert not at.exception
    assert metric(at, "Trainable parameters") == "37.7M"
    real = table(at, "model")
    assert len(real) == 3
    assert 37_748_736 in set(real["LoRA trainable"])
    assert any("37,748,736" in c.value for c in at.caption)


def test_savings_calculator_follows_its_inputs():
    at = open_app("views/savings.py")
    at.selectbox(key="sav_arch").set_value("llama2-7b").run()
    at.multiselect(key="sav_targets").set_value(["q", "k", "v", "o"]).run()
    at.select_slider(key="sav_rank").set_value(16).run()
    assert not at.exception
    assert metric(at, "Trainable parameters") == "16.8M"  # 32 layers * 4 * 16 * (4096 + 4096)


def test_savings_without_targets_warns_instead_of_failing():
    at = open_app("views/savings.py")
    at.multiselect(key="sav_targets").set_value([]).run()
    assert not at.exception
    assert any("target module" in w.value for w in at.warning)
    assert table(at, "layer") is not None  # the rest of the page still renders


def test_savings_explains_a_model_that_cannot_be_built():
    at = open_app("views/savings.py", targets="nope")  # valid text, but no layer of the model is called that
    assert not at.exception
    assert any("match no linear layer" in e.value for e in at.error)
    assert table(at, "model") is not None  # the calculator still works
