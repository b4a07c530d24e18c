"""Optimizers, schedules and clipping against formulas written out by hand (torch.optim's documented rules)."""
import json
import math

import numpy as np
import pytest

from lora_core.errors import CheckpointError, ConfigError
from lora_core.module import Param
from lora_core.optim import (OPTIMIZERS, SCHEDULES, STATE_PER_PARAM, SGD, Adam, AdamW, RMSprop, clip_grad_norm,
                             constant_schedule, grad_norm, make_optimizer, make_schedule, warmup_cosine)

P0 = np.array([[0.5, -1.0, 2.0], [0.25, 3.0, -0.75]])
# Three different gradients, so buffers and averages really mix.
GRADS = [np.array([[0.1, -0.2, 0.3], [1.0, -0.5, 0.05]]),
         np.array([[-0.3, 0.1, 0.2], [0.4, 0.6, -0.1]]),
         np.array([[0.2, 0.2, -0.4], [-0.7, 0.3, 0.9]])]


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def run(make, grads=GRADS, p0=P0, lr_scales=None):
    """Values of the param after each step with the given grads."""
    p = Param(p0.copy(), role="lora_A")
    opt = make([("w", p)])
    out = []
    for i, g in enumerate(grads):
        p.grad[...] = g
        opt.step() if lr_scales is None else opt.step(lr_scales[i])
        out.append(p.value.copy())
    return out, opt, p


# -- reference rules, written from torch's documentation --------------------------------------
def ref_sgd(lr, mu=0.0, tau=0.0, nesterov=False, wd=0.0, grads=GRADS, p0=P0):
    theta, b, out = p0.copy(), None, []
    for g in grads:
        g = g + wd * theta
        if mu != 0:
            b = g.copy() if b is None else mu * b + (1 - tau) * g
            g = g + mu * b if nesterov else b
        theta = theta - lr * g
        out.append(theta)
    return out


def ref_rmsprop(lr, alpha, eps, wd=0.0, mu=0.0, centered=False, grads=GRADS, p0=P0):
    theta, out = p0.copy(), []
    v, b, gave = np.zeros_like(p0), np.zeros_like(p0), np.zeros_like(p0)
    for g in grads:
        g = g + wd * theta
        v = alpha * v + (1 - alpha) * g ** 2
        vt = v
        if centered:
            gave = gave * alpha + (1 - alpha) * g
            vt = vt - gave ** 2
        if mu > 0:
            b = mu * b + g / (np.sqrt(vt) + eps)
            theta = theta - lr * b
        else:
            theta = theta - lr * g / (np.sqrt(vt) + eps)
        out.append(theta)
    return out


def ref_adam(lr, b1, b2, eps, wd=0.0, decoupled=False, grads=GRADS, p0=P0, lrs=None):
    theta, m, v, out = p0.copy(), np.zeros_like(p0), np.zeros_like(p0), []
    for t, g in enumerate(grads, start=1):
        lr_t = lr if lrs is None else lrs[t - 1]
        if decoupled:
            theta = theta - lr_t * wd * theta
        else:
            g = g + wd * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        theta = theta - lr_t * m_hat / (np.sqrt(v_hat) + eps)
        out.append(theta)
    return out


# -- SGD ---------------------------------------------------------------------------------------
def test_sgd_plain_by_hand():
    out, _, _ = run(lambda ps: SGD(ps, lr=0.1))
    close(out[0], P0 - 0.1 * GRADS[0])
    close(out[1], P0 - 0.1 * GRADS[0] - 0.1 * GRADS[1])
    close(out[2], P0 - 0.1 * (GRADS[0] + GRADS[1] + GRADS[2]))


def test_sgd_weight_decay():
    out, _, _ = run(lambda ps: SGD(ps, lr=0.1, weight_decay=0.05))
    for a, b in zip(out, ref_sgd(0.1, wd=0.05)):
        close(a, b)
    close(out[0], P0 - 0.1 * (GRADS[0] + 0.05 * P0))


def test_sgd_momentum_and_dampening():
    out, opt, _ = run(lambda ps: SGD(ps, lr=0.1, momentum=0.9, dampening=0.3))
    g0, g1, g2 = GRADS
    b1 = g0                      # first step: the buffer is the gradient, not damped
    b2 = 0.9 * b1 + 0.7 * g1
    b3 = 0.9 * b2 + 0.7 * g2
    close(out[0], P0 - 0.1 * b1)
    close(out[1], P0 - 0.1 * b1 - 0.1 * b2)
    close(out[2], P0 - 0.1 * (b1 + b2 + b3))
    close(opt.state["w"]["momentum_buffer"], b3)


def test_sgd_nesterov_with_weight_decay():
    out, _, _ = run(lambda ps: SGD(ps, lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1))
    for a, b in zip(out, ref_sgd(0.05, mu=0.8, nesterov=True, wd=0.1)):
        close(a, b)
    # step 1 by hand: b = g, update g + mu*b = 1.8 g
    g = GRADS[0] + 0.1 * P0
    close(out[0], P0 - 0.05 * 1.8 * g)


def test_step_does_not_touch_grads_and_lr_scale_scales_lr():
    p = Param(P0.copy())
    opt = SGD([("w", p)], lr=0.2, momentum=0.5, nesterov=True, weight_decay=0.1)
    p.grad[...] = GRADS[0]
    opt.step(lr_scale=0.5)
    np.testing.assert_array_equal(p.grad, GRADS[0])
    close(p.value, P0 - 0.1 * 1.5 * (GRADS[0] + 0.1 * P0))


# -- RMSprop -----------------------------------------------------------------------------------
def test_rmsprop_plain_by_hand():
    out, opt, _ = run(lambda ps: RMSprop(ps, lr=0.01))
    g0, g1 = GRADS[0], GRADS[1]
    v1 = 0.01 * g0 ** 2
    v2 = 0.99 * v1 + 0.01 * g1 ** 2
    close(out[0], P0 - 0.01 * g0 / (np.sqrt(v1) + 1e-8))
    close(out[1], out[0] - 0.01 * g1 / (np.sqrt(v2) + 1e-8))
    for a, b in zip(out, ref_rmsprop(0.01, 0.99, 1e-8)):
        close(a, b)
    assert set(opt.state["w"]) == {"square_avg"}


def test_rmsprop_centered_momentum_weight_decay():
    make = lambda ps: RMSprop(ps, lr=0.02, alpha=0.9, eps=1e-6, weight_decay=0.1, momentum=0.7, centered=True)
    out, opt, _ = run(make)
    for a, b in zip(out, ref_rmsprop(0.02, 0.9, 1e-6, wd=0.1, mu=0.7, centered=True)):
        close(a, b)
    # step 1 by hand: v = 0.1 g^2, g_ave = 0.1 g, v~ = 0.1 g^2 - 0.01 g^2 = 0.09 g^2, b = g / (0.3|g| + eps)
    g = GRADS[0] + 0.1 * P0
    close(out[0], P0 - 0.02 * g / (0.3 * np.abs(g) + 1e-6))
    assert set(opt.state["w"]) == {"square_avg", "momentum_buffer", "grad_avg"}
    assert opt.state_per_param == 3


# -- Adam / AdamW ------------------------------------------------------------------------------
def test_adam_bias_correction_by_hand():
    out, opt, _ = run(lambda ps: Adam(ps, lr=0.01))
    # step 1: m^ = g, v^ = g^2, so the step is lr * g / (|g| + eps), about lr * sign(g)
    g = GRADS[0]
    close(out[0], P0 - 0.01 * g / (np.abs(g) + 1e-8))
    # step 2 by hand
    m = 0.9 * 0.1 * g + 0.1 * GRADS[1]
    v = 0.999 * 0.001 * g ** 2 + 0.001 * GRADS[1] ** 2
    close(out[1], out[0] - 0.01 * (m / (1 - 0.9 ** 2)) / (np.sqrt(v / (1 - 0.999 ** 2)) + 1e-8))
    for a, b in zip(out, ref_adam(0.01, 0.9, 0.999, 1e-8)):
        close(a, b)
    assert opt.param_steps == {"w": 3} and opt.steps == 3


def test_adam_l2_weight_decay():
    out, _, _ = run(lambda ps: Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1))
    for a, b in zip(out, ref_adam(0.01, 0.8, 0.99, 1e-6, wd=0.1)):
        close(a, b)


def test_adamw_decoupled_weight_decay():
    out, _, _ = run(lambda ps: AdamW(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1))
    for a, b in zip(out, ref_adam(0.01, 0.8, 0.99, 1e-6, wd=0.1, decoupled=True)):
        close(a, b)
    # step 1 by hand: shrink, then the Adam step on the raw gradient
    g = GRADS[0]
    close(out[0], P0 * (1 - 0.01 * 0.1) - 0.01 * g / (np.abs(g) + 1e-6))


def test_adamw_differs_from_adam_only_through_weight_decay():
    adam0, _, _ = run(lambda ps: Adam(ps, lr=0.01))
    adamw0, _, _ = run(lambda ps: AdamW(ps, lr=0.01, weight_decay=0.0))
    for a, b in zip(adam0, adamw0):
        np.testing.assert_array_equal(a, b)
    adam, _, _ = run(lambda ps: Adam(ps, lr=0.01, weight_decay=0.5))
    adamw, _, _ = run(lambda ps: AdamW(ps, lr=0.01, weight_decay=0.5))
    assert not np.allclose(adam[0], adamw[0])
    # Adam's L2 goes through the normalisation, AdamW's shrink does not:
    # first step of AdamW = exactly (1 - lr*wd) * p0 - lr * g/(|g|+eps)
    g = GRADS[0]
    close(adamw[0], P0 * (1 - 0.005) - 0.01 * g / (np.abs(g) + 1e-8))
    gl2 = g + 0.5 * P0
    close(adam[0], P0 - 0.01 * gl2 / (np.abs(gl2) + 1e-8))
    assert AdamW([("w", Param(P0.copy()))]).param_groups[0]["weight_decay"] == 0.01  # torch's default


def test_adam_follows_the_schedule_multiplier():
    scales = [0.5, 1.0, 0.25]
    out, _, _ = run(lambda ps: AdamW(ps, lr=0.01, weight_decay=0.1), lr_scales=scales)
    for a, b in zip(out, ref_adam(0.01, 0.9, 0.999, 1e-8, wd=0.1, decoupled=True, lrs=[0.01 * s for s in scales])):
        close(a, b)


def test_float32_params_stay_float32_and_scratch_is_shared():
    rng = np.random.default_rng(0)
    big = Param(rng.standard_normal((4, 5)).astype(np.float32))
    small = Param(rng.standard_normal(3))
    big64 = Param(big.value.astype(np.float64))
    opt = Adam([("big", big), ("small", small), ("big64", big64)], lr=0.01, weight_decay=0.1)
    for _ in range(3):
        big.grad[...] = rng.standard_normal((4, 5))
        big64.grad[...] = big.grad
        small.grad[...] = rng.standard_normal(3)
        opt.step()
    assert big.value.dtype == np.float32 and opt.state["big"]["exp_avg"].dtype == np.float32
    np.testing.assert_allclose(big.value, big64.value, rtol=1e-5)


# -- frozen params, groups, LoRA+ --------------------------------------------------------------
def test_frozen_param_is_refused():
    p = Param(P0.copy(), trainable=False)
    with pytest.raises(ConfigError, match="params"):
        SGD([("fc1.weight", p)], lr=0.1)
    with pytest.raises(ConfigError, match="params"):
        SGD([], lr=0.1)
    q = Param(P0.copy())
    with pytest.raises(ConfigError, match="params"):
        SGD([("a", q), ("b", q)], lr=0.1)


def test_param_groups_fill_missing_keys_from_defaults():
    a, b = Param(P0.copy()), Param(P0.copy())
    opt = SGD([{"params": [("a", a)]}, {"params": [("b", b)], "lr": 0.5}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.9]
    with pytest.raises(ConfigError, match="lr"):
        SGD([{"params": [("a", a)], "lr": -1.0}], lr=0.1)
    with pytest.raises(ConfigError, match="key"):
        SGD([{"params": [("a", a)], "betas": (0.9, 0.9)}], lr=0.1)


def lora_params():
    return [("fc1.lora_A", Param(np.ones((2, 3)), role="lora_A")),
            ("fc1.lora_B", Param(np.ones((3, 2)), role="lora_B")),
            ("head.weight", Param(np.ones((1, 3)), role="weight")),
            ("fc2.lora_B", Param(np.ones((3, 2)), role="lora_B"))]


def test_loraplus_puts_lora_b_at_ratio_times_lr():
    params = lora_params()
    opt = make_optimizer("sgd", params, 0.1, loraplus_ratio=16)
    lrs = {name: g["lr"] for g in opt.param_groups for name, _ in g["params"]}
    assert lrs == {"fc1.lora_A": 0.1, "head.weight": 0.1, "fc1.lora_B": pytest.approx(1.6),
                   "fc2.lora_B": pytest.approx(1.6)}
    for _, p in params:
        p.grad[...] = 1.0
    opt.step()
    close(params[0][1].value, np.full((2, 3), 0.9))
    close(params[1][1].value, np.full((3, 2), 1 - 1.6))
    # ratio 1: one group; no lora_B at all: one group too
    assert len(make_optimizer("adam", lora_params(), 0.1).param_groups) == 1
    assert len(make_optimizer("adam", lora_params()[2:3], 0.1, loraplus_ratio=4).param_groups) == 1


def test_make_optimizer_builds_the_named_rule():
    def build(name, **kw):
        return make_optimizer(name, [("w", Param(P0.copy()))], 0.1, **kw)
    assert type(build("sgd")) is SGD and build("sgd").param_groups[0]["momentum"] == 0
    g = build("momentum", momentum=0.8).param_groups[0]
    assert (g["momentum"], g["nesterov"]) == (0.8, False)
    assert build("nesterov").param_groups[0]["nesterov"] is True
    g = build("rmsprop").param_groups[0]
    assert type(build("rmsprop")) is RMSprop and (g["momentum"], g["centered"], g["alpha"]) == (0, False, 0.99)
    assert type(build("adam")) is Adam and type(build("adamw", weight_decay=0.01)) is AdamW
    for name in OPTIMIZERS:
        assert build(name).state_per_param == STATE_PER_PARAM[name]
        assert build(name).state_numbers(1000) == 1000 * STATE_PER_PARAM[name]


# -- invalid hyper-parameters ------------------------------------------------------------------
W = [("w", Param(np.zeros(3)))]

BAD = [
    ("lr", lambda: make_optimizer("adam", W, 0.0)),
    ("lr", lambda: make_optimizer("adam", W, -1e-3)),
    ("lr", lambda: make_optimizer("adam", W, float("nan"))),
    ("lr", lambda: make_optimizer("adam", W, float("inf"))),
    ("lr", lambda: make_optimizer("adam", W, "0.1")),
    ("weight_decay", lambda: make_optimizer("sgd", W, 0.1, weight_decay=-0.1)),
    ("momentum", lambda: make_optimizer("momentum", W, 0.1, momentum=1.0)),
    ("momentum", lambda: make_optimizer("momentum", W, 0.1, momentum=-0.1)),
    ("momentum", lambda: make_optimizer("nesterov", W, 0.1, momentum=0.0)),
    ("betas", lambda: make_optimizer("adam", W, 0.1, betas=(0.9, 1.0))),
    ("betas", lambda: make_optimizer("adam", W, 0.1, betas=(-0.1, 0.9))),
    ("betas", lambda: make_optimizer("adam", W, 0.1, betas=(0.9,))),
    ("eps", lambda: make_optimizer("adam", W, 0.1, eps=0.0)),
    ("loraplus_ratio", lambda: make_optimizer("adam", W, 0.1, loraplus_ratio=0.5)),
    ("loraplus_ratio", lambda: make_optimizer("adam", W, 0.1, loraplus_ratio=float("nan"))),
    ("optimizer", lambda: make_optimizer("lion", W, 0.1)),
    ("momentum", lambda: SGD(W, lr=0.1, nesterov=True)),
    ("dampening", lambda: SGD(W, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)),
    ("dampening", lambda: SGD(W, lr=0.1, momentum=0.9, dampening=1.5)),
    ("nesterov", lambda: SGD(W, lr=0.1, momentum=0.9, nesterov="yes")),
    ("lr", lambda: SGD(W, lr=0)),
    ("alpha", lambda: RMSprop(W, alpha=1.0)),
    ("eps", lambda: RMSprop(W, eps=-1e-8)),
    ("momentum", lambda: RMSprop(W, momentum=1.5)),
    ("centered", lambda: RMSprop(W, centered=1)),
    ("weight_decay", lambda: AdamW(W, weight_decay=-0.01)),
    ("betas", lambda: AdamW(W, betas=(0.9, 0.999, 0.5))),
    ("lr_scale", lambda: SGD(W, lr=0.1).step(-1.0)),
    ("lr_scale", lambda: SGD(W, lr=0.1).step(float("nan"))),
    ("schedule", lambda: make_schedule("linear", 10)),
    ("total_steps", lambda: make_schedule("warmup_cosine", 0)),
    ("warmup_steps", lambda: make_schedule("warmup_cosine", 10, warmup_steps=10)),
    ("warmup_steps", lambda: make_schedule("constant", 10, warmup_steps=-1)),
    ("min_ratio", lambda: make_schedule("warmup_cosine", 10, min_ratio=1.5)),
    ("step", lambda: warmup_cosine(-1, 10, 2)),
    ("step", lambda: make_schedule("warmup_cosine", 10, 2)(-1)),
    ("max_norm", lambda: clip_grad_norm(W, 0.0)),
    ("max_norm", lambda: clip_grad_norm(W, float("inf"))),
]


@pytest.mark.parametrize("field, call", BAD, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD)])
def test_invalid_hyper_parameters_raise_config_error_naming_the_field(field, call):
    with pytest.raises(ConfigError) as info:
        call()
    assert field in str(info.value)


# -- schedules ---------------------------------------------------------------------------------
def test_constant_schedule():
    assert constant_schedule(0) == constant_schedule(10_000) == 1.0
    assert make_schedule("constant", 100)(57) == 1.0
    assert SCHEDULES == ("constant", "warmup_cosine")


def test_warmup_cosine_values():
    total, warmup = 14, 4
    f = make_schedule("warmup_cosine", total, warmup_steps=warmup)
    assert [f(s) for s in range(warmup)] == [0.25, 0.5, 0.75, 1.0]
    # the decay runs from step 3 (peak) to step 13 (last): its middle is step 8
    assert f(8) == pytest.approx(0.5, abs=1e-15)
    assert f(total - 1) == pytest.approx(0.0, abs=1e-15)
    assert f(total + 5) == pytest.approx(0.0, abs=1e-15)
    values = [f(s) for s in range(warmup - 1, total)]
    assert all(a > b for a, b in zip(values, values[1:]))  # strictly decreasing after the peak
    assert f(5) == pytest.approx(0.5 * (1 + math.cos(math.pi * 2 / 10)))
    assert f(5) == warmup_cosine(5, total, warmup)


def test_warmup_cosine_min_ratio_and_no_warmup():
    f = make_schedule("warmup_cosine", 11, warmup_steps=0, min_ratio=0.1)
    assert f(0) == 1.0
    assert f(5) == pytest.approx(0.1 + 0.9 * 0.5)
    assert f(10) == pytest.approx(0.1)
    assert make_schedule("warmup_cosine", 1)(0) == 1.0  # a one-step run trains at full lr


# -- gradient norm and clipping ----------------------------------------------------------------
def grads_params():
    rng = np.random.default_rng(3)
    return [(f"p{i}", Param(rng.standard_normal(shape))) for i, shape in enumerate([(3, 4), (5,), (2, 2)])], rng


def test_grad_norm_matches_numpy():
    params, rng = grads_params()
    for _, p in params:
        p.grad[...] = rng.standard_normal(p.shape)
    flat = np.concatenate([p.grad.ravel() for _, p in params])
    assert grad_norm(params) == pytest.approx(np.linalg.norm(flat), rel=1e-14)
    assert grad_norm([p for _, p in params]) == grad_norm(params)


def test_clip_grad_norm_like_torch():
    params, rng = grads_params()
    for _, p in params:
        p.grad[...] = rng.standard_normal(p.shape)
    before = [p.grad.copy() for _, p in params]
    norm = np.linalg.norm(np.concatenate([g.ravel() for g in before]))
    returned = clip_grad_norm(params, 0.5)
    assert returned == pytest.approx(norm, rel=1e-14)
    coef = 0.5 / (norm + 1e-6)  # torch.nn.utils.clip_grad_norm_
    for g0, (_, p) in zip(before, params):
        close(p.grad, g0 * coef)
    assert grad_norm(params) == pytest.approx(0.5 * norm / (norm + 1e-6), rel=1e-12)
    # under the limit: untouched, bit for bit
    after = [p.grad.copy() for _, p in params]
    assert clip_grad_norm([p for _, p in params], 10.0) == pytest.approx(0.5, rel=1e-5)
    for g0, (_, p) in zip(after, params):
        np.testing.assert_array_equal(p.grad, g0)


def test_zero_grad_in_place():
    p = Param(P0.copy())
    grad = p.grad
    grad[...] = 3.0
    opt = Adam([("w", p)])
    opt.zero_grad()
    assert p.grad is grad and not grad.any()


# -- save / load -------------------------------------------------------------------------------
CONFIGS = [
    ("sgd", {}), ("momentum", {"weight_decay": 0.01}), ("nesterov", {}), ("rmsprop", {"weight_decay": 0.01}),
    ("adam", {"weight_decay": 0.01}), ("adamw", {"weight_decay": 0.1, "loraplus_ratio": 8}),
]


def model_params(dtype=np.float64):
    rng = np.random.default_rng(7)
    return [("fc1.lora_A", Param(rng.standard_normal((2, 5)).astype(dtype), role="lora_A")),
            ("fc1.lora_B", Param(rng.standard_normal((4, 2)).astype(dtype), role="lora_B")),
            ("head.bias", Param(rng.standard_normal(3).astype(dtype), role="bias"))]


def train(opt, params, steps, start, schedule):
    for s in range(start, start + steps):
        rng = np.random.default_rng(100 + s)  # the grads of step s, whoever runs it
        for _, p in params:
            p.grad[...] = rng.standard_normal(p.shape)
        clip_grad_norm(params, 1.0)
        opt.step(schedule(s))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, kw", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_resume_equals_not_stopping(name, kw, dtype):
    schedule = make_schedule("warmup_cosine", 10, warmup_steps=3)
    ref = model_params(dtype)
    opt = make_optimizer(name, ref, 0.05, **kw)
    train(opt, ref, 10, 0, schedule)

    first = model_params(dtype)
    opt1 = make_optimizer(name, first, 0.05, **kw)
    train(opt1, first, 5, 0, schedule)
    arrays, meta = opt1.state_dict()
    meta = json.loads(json.dumps(meta))  # what a checkpoint file holds
    values = {n: p.value.copy() for n, p in first}

    second = model_params(dtype)  # a fresh model and optimizer, as after a restart
    for n, p in second:
        p.value[...] = values[n]
    opt2 = make_optimizer(name, second, 0.05, **kw)
    opt2.load_state_dict(arrays, meta)
    assert opt2.steps == 5
    train(opt2, second, 5, 5, schedule)
    for (_, a), (_, b) in zip(ref, second):
        assert np.array_equal(a.value, b.value)
    for k, v in opt.state_dict()[0].items():
        assert np.array_equal(v, opt2.state_dict()[0][k])


def test_state_dict_keys_and_copies():
    params = model_params()
    opt = make_optimizer("adam", params, 0.01)
    assert opt.state == {} and opt.state_dict()[0] == {}  # state is created at the first step
    train(opt, params, 2, 0, constant_schedule)
    arrays, meta = opt.state_dict()
    assert set(arrays) == {f"{n}/{s}" for n, _ in params for s in ("exp_avg", "exp_avg_sq")}
    assert meta["steps"] == 2 and meta["param_steps"] == {n: 2 for n, _ in params}
    arrays["fc1.lora_A/exp_avg"][...] = 99.0
    assert not (opt.state["fc1.lora_A"]["exp_avg"] == 99.0).any()
    # a fresh optimizer's state (no step yet) loads too
    fresh = make_optimizer("adam", model_params(), 0.01)
    opt.load_state_dict(*fresh.state_dict())
    assert opt.state == {} and opt.steps == 0


def test_load_restores_hyper_parameters_like_torch():
    params = model_params()
    opt = make_optimizer("momentum", params, 0.01, momentum=0.5)
    train(opt, params, 1, 0, constant_schedule)
    other = make_optimizer("momentum", model_params(), 0.3, momentum=0.9)
    other.load_state_dict(*opt.state_dict())
    assert (other.param_groups[0]["lr"], other.param_groups[0]["momentum"]) == (0.01, 0.5)


def test_load_rejects_mismatches_with_a_sentence():
    params = model_params()
    opt = make_optimizer("adam", params, 0.01)
    train(opt, params, 2, 0, constant_schedule)
    arrays, meta = opt.state_dict()

    def fresh(name="adam", ps=None, **kw):
        return make_optimizer(name, ps if ps is not None else model_params(), 0.01, **kw)

    with pytest.raises(CheckpointError, match="'Adam'.*'SGD'"):
        fresh("sgd").load_state_dict(arrays, meta)
    with pytest.raises(CheckpointError, match="unexpected \\['head.bias'\\]"):
        fresh(ps=model_params()[:2]).load_state_dict(arrays, meta)
    extra = model_params() + [("fc2.lora_A", Param(np.zeros((2, 2)), role="lora_A"))]
    with pytest.raises(CheckpointError, match="missing \\['fc2.lora_A'\\]"):
        fresh(ps=extra).load_state_dict(arrays, meta)
    with pytest.raises(CheckpointError, match="parameter groups"):
        fresh(loraplus_ratio=4).load_state_dict(arrays, meta)
    bad = dict(arrays, **{"fc1.lora_A/exp_avg": np.zeros((5, 2))})
    with pytest.raises(CheckpointError, match="shape"):
        fresh().load_state_dict(bad, meta)
    with pytest.raises(CheckpointError, match="missing"):
        fresh().load_state_dict({k: v for k, v in arrays.items() if k != "head.bias/exp_avg_sq"}, meta)
    with pytest.raises(CheckpointError, match="unexpected entry"):
        fresh().load_state_dict(dict(arrays, **{"head.bias/momentum_buffer": np.zeros(3)}), meta)
    with pytest.raises(CheckpointError, match="does not train"):
        fresh().load_state_dict(dict(arrays, **{"fc9.lora_A/exp_avg": np.zeros(3)}), meta)
    broken = json.loads(json.dumps(meta))
    broken["param_groups"][0]["lr"] = -1
    with pytest.raises(CheckpointError, match="lr"):
        fresh().load_state_dict(arrays, broken)
    for key, value in [("steps", -3), ("param_steps", {"fc1.lora_A": "x"}), ("param_groups", "x")]:
        with pytest.raises(CheckpointError):
            fresh().load_state_dict(arrays, dict(meta, **{key: value}))
    with pytest.raises(CheckpointError):
        fresh().load_state_dict(arrays, "not a dict")
    # nothing was changed by a failed load
    target = fresh()
    with pytest.raises(CheckpointError):
        target.load_state_dict(bad, meta)
    assert target.state == {} and target.steps == 0


# -- convergence sanity ------------------------------------------------------------------------
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_each_optimizer_minimises_a_convex_quadratic(name):
    # f(x) = 0.5 x^T H x - c^T x, H symmetric positive definite (condition number 10)
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    h = q @ np.diag(np.linspace(1.0, 10.0, 6)) @ q.T
    c = rng.standard_normal(6)
    x_star = np.linalg.solve(h, c)
    f = lambda x: 0.5 * x @ h @ x - c @ x

    lr = {"sgd": 0.1, "momentum": 0.02, "nesterov": 0.02, "rmsprop": 0.01, "adam": 0.05, "adamw": 0.05}[name]
    p = Param(np.zeros(6))
    opt = make_optimizer(name, [("x", p)], lr)
    steps = 2000
    schedule = make_schedule("warmup_cosine", steps, warmup_steps=20)
    start_gap = f(p.value) - f(x_star)
    for s in range(steps):
        p.grad[...] = h @ p.value - c
        opt.step(schedule(s))
    assert f(p.value) - f(x_star) < 1e-6 * start_gap
    np.testing.assert_allclose(p.value, x_star, atol=1e-3)
