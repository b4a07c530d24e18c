"""LoRA layer behaviour: the no-op start, merge/unmerge, scaling, init schemes and refusals."""
import math

import numpy as np
import pytest

from lora_core.errors import ConfigError
from lora_core.layers import Linear, LoRALinear
from lora_core.models import MLP, add_lora, merge_all, unmerge_all


def base(d_in=6, d_out=5, seed=0):
    return Linear(d_in, d_out, rng=np.random.default_rng(seed))


def test_lora_model_at_init_equals_its_base_exactly():
    rng = np.random.default_rng(0)
    model = MLP([8, 7, 6, 3], rng=np.random.default_rng(1))
    x = rng.standard_normal((10, 8))
    before = model.forward(x).copy()
    add_lora(model, ["fc*"], r=2, alpha=16.0, rng=rng)
    assert np.array_equal(model.forward(x), before)  # B = 0: bit-for-bit the base


def test_merge_then_unmerge_restores_w0_and_merge_keeps_outputs():
    layer = LoRALinear(base(), 3, alpha=6.0, rng=np.random.default_rng(1))
    layer.lora_B.value[...] = np.random.default_rng(2).standard_normal(layer.lora_B.shape)
    w0 = layer.weight.value.copy()
    x = np.random.default_rng(3).standard_normal((4, 6))
    adapted = layer.forward(x).copy()
    layer.merge()
    assert np.allclose(layer.weight.value, w0 + 2.0 * layer.lora_B.value @ layer.lora_A.value)
    assert np.allclose(layer.forward(x), adapted, rtol=1e-12, atol=1e-12)
    layer.unmerge()
    assert np.allclose(layer.weight.value, w0, rtol=0, atol=1e-14)
    assert np.allclose(layer.forward(x), adapted, rtol=1e-12, atol=1e-12)


def test_merge_all_on_a_model():
    model = MLP([5, 4, 3], rng=np.random.default_rng(0))
    add_lora(model, ["fc*"], r=2, alpha=2.0)
    for _, p in model.named_parameters():
        if p.role == "lora_B":
            p.value[...] = 0.3
    x = np.ones((2, 5))
    out = model.forward(x).copy()
    merge_all(model)
    assert np.allclose(model.forward(x), out)
    unmerge_all(model)
    assert np.allclose(model.forward(x), out)


@pytest.mark.parametrize("rslora, expected", [(False, 8.0 / 4), (True, 8.0 / math.sqrt(4))])
def test_scaling(rslora, expected):
    layer = LoRALinear(base(8, 8), 4, alpha=8.0, use_rslora=rslora)
    assert layer.scale == expected
    layer.lora_B.value[...] = 1.0
    assert np.allclose(layer.delta_weight(), expected * layer.lora_B.value @ layer.lora_A.value)


def test_kaiming_init_bound_and_gaussian_init():
    layer = LoRALinear(base(400, 50), 8, alpha=8.0, rng=np.random.default_rng(0))
    a = layer.lora_A.value
    assert np.abs(a).max() <= 1 / math.sqrt(400) and np.abs(a).max() > 0.9 / math.sqrt(400)
    assert not layer.lora_B.value.any()
    gauss = LoRALinear(base(400, 50), 8, alpha=8.0, init="gaussian", rng=np.random.default_rng(0))
    assert gauss.lora_A.value.std() == pytest.approx(1 / 8, rel=0.05)  # PEFT: N(0, 1/r)


def test_pissa_starts_at_w0_with_the_top_singular_directions_in_the_adapter():
    w0 = base(10, 8).weight.value.copy()
    layer = LoRALinear(base(10, 8), 3, alpha=3.0, init="pissa")
    assert np.allclose(layer.weight.value + layer.delta_weight(), w0)  # residual + adapter = W0
    s = np.linalg.svd(w0, compute_uv=False)
    assert np.allclose(np.linalg.svd(layer.delta_weight(), compute_uv=False)[:3], s[:3])
    assert np.allclose(np.linalg.svd(layer.weight.value, compute_uv=False)[:5], s[3:])


def test_base_is_frozen_and_adapter_trains():
    layer = LoRALinear(base(), 2, alpha=2.0)
    assert not layer.weight.trainable and not layer.bias.trainable
    assert layer.lora_A.trainable and layer.lora_B.trainable
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias", "lora_A", "lora_B"]


@pytest.mark.parametrize("kwargs, field", [
    (dict(r=0), "r"), (dict(r=6), "r"), (dict(r=2.5), "r"),
    (dict(alpha=0.0), "alpha"), (dict(alpha=-1.0), "alpha"), (dict(alpha=float("nan")), "alpha"),
    (dict(dropout=1.0), "dropout"), (dict(dropout=-0.1), "dropout"), (dict(init="xavier"), "init"),
])
def test_invalid_settings_name_the_field(kwargs, field):
    settings = dict(r=2, alpha=4.0) | kwargs
    with pytest.raises(ConfigError) as info:
        LoRALinear(base(6, 5), **settings)
    message = str(info.value)
    assert message.startswith(f"{field}=") and "must be" in message


def test_add_lora_refuses_a_rank_too_large_for_a_layer():
    model = MLP([8, 6, 3])
    with pytest.raises(ConfigError, match="fc2"):
        add_lora(model, ["fc*"], r=4, alpha=1.0)


def test_add_lora_refuses_targets_that_match_nothing():
    with pytest.raises(ConfigError, match="match no linear layer"):
        add_lora(MLP([4, 3]), ["attn.*"], r=1, alpha=1.0)


def test_dropout_only_in_training_mode():
    layer = LoRALinear(base(), 2, alpha=2.0, dropout=0.5, rng=np.random.default_rng(0))
    layer.lora_B.value[...] = 1.0
    x = np.ones((50, 6))
    train_out = layer.forward(x).copy()
    layer.eval()
    eval_out = layer.forward(x)
    assert not np.allclose(train_out, eval_out)
    # inverted dropout: the expected training output equals the eval output
    means = np.mean([layer.train().forward(x) for _ in range(400)], axis=0)
    assert np.allclose(means.mean(axis=0), eval_out[0], atol=0.05 * np.abs(eval_out).max())


def test_multimodal_parameter_breakdown_per_branch():
    from lora_core.models import MultimodalModel

    model = MultimodalModel(6, 5, 3, fusion="early", hidden=4)
    add_lora(model, ["text.fc1", "image.fc1"], r=2, alpha=2.0)
    rows = {row["branch"]: row for row in model.parameter_breakdown()}
    assert rows["text"] == {"branch": "text", "frozen": 6 * 4 + 4, "trainable": 2 * (6 + 4)}
    assert rows["image"] == {"branch": "image", "frozen": 5 * 4 + 4, "trainable": 2 * (5 + 4)}
    assert rows["fusion"] == {"branch": "fusion", "frozen": 8 * 4 + 4 + 4 * 3 + 3, "trainable": 0}
