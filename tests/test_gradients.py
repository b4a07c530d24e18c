"""Every layer, loss and model: hand-written gradients equal finite differences (float64)."""
import numpy as np
import pytest

from lora_core.layers import GELU, CrossAttention, Embedding, Linear, LoRALinear, ReLU, Tanh
from lora_core.losses import cross_entropy_loss, mse_loss
from lora_core.models import CharLM, MLP, MultimodalModel, add_lora, set_method
from tests.gradcheck import check_module, numeric_grad

TOL = 1e-6


def assert_close(errors):
    assert errors, "nothing was checked"
    bad = {k: v for k, v in errors.items() if not v < TOL}
    assert not bad, f"gradient mismatch: {bad}"


def trained_lora(base, r=2, **kw):
    """A LoRA layer whose B is not zero, so every gradient path carries signal."""
    layer = LoRALinear(base, r, alpha=3.0, rng=np.random.default_rng(1), **kw)
    layer.lora_B.value[...] = np.random.default_rng(2).standard_normal(layer.lora_B.shape)
    return layer


def test_linear():
    x = np.random.default_rng(0).standard_normal((5, 4))
    assert_close(check_module(Linear(4, 3, rng=np.random.default_rng(1)), x))


def test_linear_on_sequences():
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    assert_close(check_module(Linear(4, 3, rng=np.random.default_rng(1)), x))


@pytest.mark.parametrize("rslora", [False, True])
@pytest.mark.parametrize("init", ["kaiming", "gaussian", "pissa"])
def test_lora_linear(rslora, init):
    layer = trained_lora(Linear(6, 5, rng=np.random.default_rng(3)), r=3, use_rslora=rslora, init=init)
    layer.set_trainable(True)  # check the base's gradient too (full fine-tuning of a LoRA model)
    x = np.random.default_rng(0).standard_normal((7, 6))
    assert_close(check_module(layer, x))


def test_lora_dropout_gradient_uses_the_same_mask():
    layer = trained_lora(Linear(6, 5, rng=np.random.default_rng(3)), dropout=0.3)

    def reseed():
        layer.rng = np.random.default_rng(42)

    x = np.random.default_rng(0).standard_normal((7, 6))
    assert_close(check_module(layer, x, reseed=reseed))


@pytest.mark.parametrize("act", [ReLU, Tanh, GELU])
def test_activations(act):
    x = np.random.default_rng(0).standard_normal((4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # keep ReLU away from its kink
    assert_close(check_module(act(), x))


def test_embedding():
    emb = Embedding(7, 3, rng=np.random.default_rng(0))
    ids = np.array([[1, 2, 1], [6, 0, 1]])  # repeated ids must add up
    assert_close(check_module(emb, ids))


def test_cross_attention():
    rng = np.random.default_rng(0)
    attn = CrossAttention(4, 5, 3, 2, rng=rng)
    q, c = rng.standard_normal((2, 1, 4)), rng.standard_normal((2, 6, 5))
    errors = check_module(attn, (q, c))
    assert {"input0", "input1"} <= set(errors)
    assert_close(errors)


def test_mse_loss():
    rng = np.random.default_rng(0)
    pred, target = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    value, grad = mse_loss(pred, target)
    assert value == pytest.approx(np.mean((pred - target) ** 2), rel=1e-12)
    num = numeric_grad(lambda: mse_loss(pred, target)[0], pred)
    assert np.max(np.abs(grad - num)) < TOL


def test_cross_entropy_loss():
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((5, 4)) * 3, np.array([0, 3, 1, 1, 2])
    value, grad = cross_entropy_loss(logits, labels)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert value == pytest.approx(-np.mean(np.log(p[np.arange(5), labels])), rel=1e-12)
    num = numeric_grad(lambda: cross_entropy_loss(logits, labels)[0], logits)
    assert np.max(np.abs(grad - num)) < TOL


def _randomise_b(model):
    rng = np.random.default_rng(9)
    for _, p in model.named_parameters():
        if p.role == "lora_B":
            p.value[...] = rng.standard_normal(p.shape) * 0.5


@pytest.mark.parametrize("method", ["lora", "full", "head"])
def test_mlp_with_cross_entropy(method):
    rng = np.random.default_rng(0)
    model = MLP([6, 5, 4, 3], activation="tanh", rng=rng)
    set_method(model, method, targets=["fc*"], r=2, alpha=2.0)
    _randomise_b(model)
    x, labels = rng.standard_normal((8, 6)), rng.integers(0, 3, 8)
    assert_close(check_module(model, x, loss=lambda out: cross_entropy_loss(out, labels)))


def test_char_lm():
    rng = np.random.default_rng(0)
    model = CharLM(vocab=6, context=3, emb_dim=2, hidden=[5], rng=rng)
    model.set_trainable(True)
    ids, labels = rng.integers(0, 6, (4, 3)), rng.integers(0, 6, 4)
    assert_close(check_module(model, ids, loss=lambda out: cross_entropy_loss(out, labels)))


def test_char_lm_with_lora():
    rng = np.random.default_rng(0)
    model = CharLM(vocab=6, context=3, emb_dim=2, hidden=[5], rng=rng)
    add_lora(model, ["fc*"], r=2, alpha=4.0, rng=rng)
    _randomise_b(model)
    ids, labels = rng.integers(0, 6, (4, 3)), rng.integers(0, 6, 4)
    errors = check_module(model, ids, loss=lambda out: cross_entropy_loss(out, labels))
    assert {"fc1.lora_A", "fc1.lora_B", "fc2.lora_A", "fc2.lora_B"} <= set(errors)
    assert_close(errors)


@pytest.mark.parametrize("fusion", ["late", "early", "attention"])
def test_multimodal(fusion):
    rng = np.random.default_rng(0)
    model = MultimodalModel(4, 5, 3, fusion=fusion, hidden=6, activation="tanh", rng=rng)
    model.set_trainable(True)
    x_text = rng.standard_normal((3, 4))
    x_image = rng.standard_normal((3, 2, 5)) if fusion == "attention" else rng.standard_normal((3, 5))
    assert_close(check_module(model, (x_text, x_image)))


@pytest.mark.parametrize("fusion", ["late", "early", "attention"])
def test_multimodal_adapters_per_branch(fusion):
    rng = np.random.default_rng(0)
    model = MultimodalModel(4, 5, 3, fusion=fusion, hidden=6, activation="tanh", rng=rng)
    paths = add_lora(model, ["text.*", "image.*"], r=2, alpha=2.0, rng=rng)
    assert {p.split(".")[0] for p in paths} == {"text", "image"}
    _randomise_b(model)
    x_text = rng.standard_normal((3, 4))
    x_image = rng.standard_normal((3, 2, 5)) if fusion == "attention" else rng.standard_normal((3, 5))
    errors = check_module(model, (x_text, x_image))
    trainable = {n for n, p in model.named_parameters() if p.trainable}
    assert trainable and all(n.endswith(("lora_A", "lora_B")) for n in trainable)
    assert_close(errors)
