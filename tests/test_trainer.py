"""The trainer: determinism, theory floors, divergence, and every modality adapting its base."""
import math

import numpy as np
import pytest

from lora_core import Config, Run, preset_config
from lora_core.errors import ConfigError

SMALL = dict(syn_d_in=16, syn_d_out=16, syn_true_rank=4, syn_samples=512, steps=200, batch_size=64)


def test_same_seed_same_curve_bit_for_bit():
    a = Run(Config(**SMALL, dropout=0.1)).run()
    b = Run(Config(**SMALL, dropout=0.1)).run()
    assert np.array_equal(a.history.array("train_loss"), b.history.array("train_loss"))
    assert all(np.array_equal(p.value, q.value) for p, q in zip(a.model.parameters(), b.model.parameters()))
    c = Run(Config(**SMALL, dropout=0.1, seed=1)).run()
    assert not np.array_equal(a.history.array("train_loss"), c.history.array("train_loss"))


def test_stepping_in_chunks_equals_one_go():
    whole = Run(Config(**SMALL)).run()
    parts = Run(Config(**SMALL))
    for n in (1, 7, 50, 500):
        parts.step(n)
    assert parts.step_count == whole.step_count == 200 and parts.status == "done"
    assert np.array_equal(whole.history.array("train_loss"), parts.history.array("train_loss"))


def test_iterating_yields_every_step_with_metrics():
    run = Run(Config(**SMALL | dict(steps=25, eval_every=10)))
    steps = list(run)
    assert [m.step for m in steps] == list(range(1, 26))
    evaluated = [m.step for m in steps if not math.isnan(m.val_loss)]
    assert evaluated == [10, 20, 25]
    assert all(m.grad_norm > 0 and m.lr == 0.01 for m in steps)


@pytest.mark.parametrize("rank", [4, 6])
def test_rank_at_or_above_the_true_rank_reaches_the_noise_floor(rank):
    config = Config(**SMALL | dict(steps=1500, syn_noise=0.2), rank=rank, lr=0.01, schedule="warmup_cosine",
                    warmup_steps=50)
    run = Run(config).run()
    floor = run.theory_floor()
    assert floor["noise"] == pytest.approx(0.04)
    val = run.history.last("val_loss")
    assert val == pytest.approx(floor["population"], rel=0.10)
    assert val <= floor["noise"] * 1.10 * (1 + 2 * 16 / 512)  # noise + estimation error of 16x16 from 512 rows


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_rank_below_the_true_rank_stops_at_the_theory_floor(rank):
    config = Config(**SMALL | dict(steps=2000, batch_size=512), rank=rank, lr=0.02, schedule="warmup_cosine",
                    warmup_steps=50)
    run = Run(config).run()
    floor = run.theory_floor()
    train_loss = run.history.last("train_loss")  # full batch: the training-set objective itself
    assert floor["train_optimum"] <= train_loss * (1 + 1e-6)  # nothing beats the exact optimum
    assert train_loss == pytest.approx(floor["train_optimum"], rel=0.10)
    assert floor["population"] > 2 * floor["noise"]  # the rank, not the noise, limits this run


def test_the_seed_preset_is_the_original_toy():
    run = Run(preset_config("seed")).run()
    c = run.config
    assert (c.rank, c.alpha, c.optimizer, c.lr, c.steps, c.batch_size, run.task.n_train) == (1, 1.0, "sgd", 0.01,
                                                                                          500, 100, 100)
    assert [n for n, _ in run.model.trainable_parameters()] == [
        "text.proj.lora_A", "text.proj.lora_B", "image.proj.lora_A", "image.proj.lora_B"]
    assert 0.19 <= run.history.last("train_loss") <= 0.28
    assert run.theory_floor()["population"] == pytest.approx(0.25, abs=1e-4)


def test_divergence_stops_with_a_reason_and_keeps_the_curve():
    run = Run(Config(**SMALL, optimizer="sgd", lr=8.0)).run()
    assert run.status == "diverged"
    assert "diverged at step" in run.message and "smaller learning rate" in run.message
    assert len(run.history) == run.step_count >= 1
    assert np.isfinite(run.history.array("train_loss")).all()
    assert run.step(10) == []  # a stopped run stays stopped


@pytest.mark.parametrize("changes, field", [
    (dict(rank=0), "rank"), (dict(syn_true_rank=20), "syn_true_rank"), (dict(lr=-1.0), "lr"),
    (dict(optimizer="lion"), "optimizer"), (dict(warmup_steps=500), "warmup_steps"),
    (dict(syn_base="identity", syn_d_out=8), "syn_base"), (dict(modality="audio"), "modality"),
    (dict(mm_dataset="toy", mm_fusion="early", modality="multimodal"), "mm_fusion"),
    (dict(dropout=1.0), "dropout"), (dict(alpha=0.0), "alpha"), (dict(batch_size=0), "batch_size"),
])
def test_bad_configs_name_the_field(changes, field):
    with pytest.raises(ConfigError) as info:
        Config(**SMALL | changes)
    assert str(info.value).startswith(f"{field}=")


def test_rank_above_the_layer_size_is_refused_with_the_layer_named():
    with pytest.raises(ConfigError, match="at most 16"):
        Run(Config(**SMALL, rank=17))


def test_config_round_trips_through_strings():
    config = Config(**SMALL, use_rslora=True, lr=0.003)
    as_strings = {k: str(v) for k, v in config.to_dict().items()}
    assert Config.from_dict(as_strings) == config
    with pytest.raises(ConfigError, match="unknown setting"):
        Config.from_dict({"rnak": 4})


# Each modality's default preset must clearly beat its frozen base on the target domain.
@pytest.mark.parametrize("preset, metric, margin", [
    ("digits-rotated", "accuracy", 0.5), ("mnist-to-fashion", "accuracy", 0.5),
    ("emoji", "accuracy", 0.25), ("text", "bpc", -0.25),
])
def test_default_runs_improve_clearly_over_the_frozen_base(preset_task, preset, metric, margin):
    config, task = preset_task(preset)
    before = task.base_scores()[metric]
    after = Run(config, task).run().evaluate()[metric]
    if margin > 0:
        assert after >= before + margin, (before, after)
    else:
        assert after <= before + margin, (before, after)


@pytest.mark.parametrize("preset", ["digits-rotated", "mnist-to-fashion", "emoji", "text"])
def test_each_base_is_good_at_its_source_and_worse_at_the_target(preset_task, preset):
    _, task = preset_task(preset)
    model = task.build_model()
    source = task.evaluate(model, *task.extras["source_val"])
    target = task.base_scores()
    if task.metric == "accuracy":
        assert source["accuracy"] >= 0.6 and target["accuracy"] <= source["accuracy"] - 0.3
    else:
        assert source["bpc"] <= 2.8 and target["bpc"] >= source["bpc"] + 0.4


def test_full_and_head_baselines_train_what_they_say(preset_task):
    config, task = preset_task("digits-rotated")
    full = Run(config.replace(method="full", steps=5), task)
    head = Run(config.replace(method="head", steps=5), task)
    assert {n for n, _ in head.model.trainable_parameters()} == {"fc3.weight", "fc3.bias"}
    assert full.model.num_parameters(trainable=True) == full.model.num_parameters()
    lora = Run(config.replace(steps=5), task)
    assert all(p.role in ("lora_A", "lora_B") for _, p in lora.model.trainable_parameters())
