"""Optimizers, learning-rate schedules and gradient clipping, with PyTorch's semantics.

Every optimizer applies exactly the update rule of its `torch.optim` namesake
(defaults, `maximize=False`), written in the class docstring the way torch's
documentation writes it. They work on `(name, Param)` pairs, so their state is
keyed by the same names as the model's `state_dict` (`fc1.lora_A`, ...) and
saves to a flat `{"fc1.lora_A/exp_avg": array}` dict plus JSON metadata.

Speed: a step on small arrays costs about one microsecond per NumPy call, so
each update is a short, fixed sequence of in-place ufuncs (`out=`) into scratch
buffers that are allocated once and reused, never a fresh temporary per step.
Schedules act through `step(lr_scale)`, like a `LambdaLR` multiplier.
"""
from __future__ import annotations

import functools
import math
from typing import Callable, Iterable

import numpy as np

from .errors import CheckpointError, ConfigError, check
from .module import Param

OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw")
# State numbers kept per parameter, for memory accounting (step counters are scalars, not counted).
# "rmsprop" is plain RMSprop as `make_optimizer` builds it: +1 with momentum, +1 when centered.
STATE_PER_PARAM = {"sgd": 0, "momentum": 1, "nesterov": 1, "rmsprop": 1, "adam": 2, "adamw": 2}
SCHEDULES = ("constant", "warmup_cosine")

_GROUP_LABEL = "name"  # an optional free-text label a group may carry (e.g. "lora_B" for LoRA+)


# -- validation helpers (shared by the classes and make_optimizer) ----------------------------
def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _check_lr(lr, field: str = "lr") -> float:
    check(_is_number(lr) and math.isfinite(lr) and lr > 0, field, lr, "a finite number > 0")
    return float(lr)


def _check_weight_decay(wd) -> float:
    check(_is_number(wd) and math.isfinite(wd) and wd >= 0, "weight_decay", wd, "a finite number >= 0")
    return float(wd)


def _check_unit(x, field: str) -> float:
    """A decay rate in [0, 1): momentum, alpha."""
    check(_is_number(x) and 0 <= x < 1, field, x, "a number in [0, 1)")
    return float(x)


def _check_eps(eps) -> float:
    check(_is_number(eps) and math.isfinite(eps) and eps > 0, "eps", eps, "a finite number > 0")
    return float(eps)


def _check_betas(betas) -> tuple[float, float]:
    ok = (isinstance(betas, (tuple, list)) and len(betas) == 2
          and all(_is_number(b) and 0 <= b < 1 for b in betas))
    check(ok, "betas", betas, "a pair (beta1, beta2) of numbers in [0, 1)")
    return float(betas[0]), float(betas[1])


def _check_bool(x, field: str) -> bool:
    check(isinstance(x, (bool, np.bool_)), field, x, "True or False")
    return bool(x)


class Optimizer:
    """Base class: param groups, lazy per-param state, `step(lr_scale)`, save and load.

    `params` is a list of `(name, Param)` pairs, or a list of group dicts
    `{"params": [(name, Param), ...], "lr": ..., ...}` as torch's param_groups;
    keys a group leaves out are taken from `defaults`. Only trainable params
    may be given. `state[name]` is created at the param's first step.
    """

    # Scratch arrays each param's update needs (views into shared buffers: see `_scratch_for`).
    _NUM_SCRATCH = 0

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        if "lr" in self.defaults:  # the defaults are checked even if every group overrides them
            self._check_group(self.defaults)
        params = list(params)
        check(len(params) > 0, "params", params, "a non-empty list of (name, Param) pairs")
        raw_groups = params if all(isinstance(g, dict) for g in params) else [{"params": params}]
        self.param_groups: list[dict] = []
        seen_names: set[str] = set()
        seen_ids: set[int] = set()
        for i, raw in enumerate(raw_groups):
            allowed = set(self.defaults) | {"params", _GROUP_LABEL}
            for key in raw:
                check(key in allowed, f"param_groups[{i}] key", key, f"one of {sorted(allowed)}")
            check("params" in raw, f"param_groups[{i}]", "no 'params'", "a dict with a 'params' list")
            group = {**self.defaults, **raw, "params": self._check_pairs(raw["params"], seen_names, seen_ids)}
            self._check_group(group)
            self.param_groups.append(group)
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self.param_steps: dict[str, int] = {}  # per-param step count, as torch's state["step"]
        self.steps = 0
        self._scratch: dict[str, tuple[np.ndarray, ...]] | None = None

    @staticmethod
    def _check_pairs(pairs, seen_names: set, seen_ids: set) -> list[tuple[str, Param]]:
        pairs = list(pairs)
        for item in pairs:
            ok = (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
                  and isinstance(item[1], Param))
            check(ok, "params", item, "(name, Param) pairs, e.g. model.trainable_parameters()")
            name, p = item
            check(p.trainable, "params", name,
                  "trainable: this param is frozen; pass model.trainable_parameters()")
            check(np.issubdtype(p.value.dtype, np.floating), "params", name, "a floating-point array")
            check(name not in seen_names and id(p) not in seen_ids, "params", name,
                  "given once: a name or Param appears twice (or in two groups)")
            seen_names.add(name)
            seen_ids.add(id(p))
        return pairs

    def _check_group(self, group: dict) -> None:
        """Validate a group's hyper-parameters and normalise them to plain Python types (JSON-able)."""
        check("lr" in group, "lr", None, "given (no default lr)")
        group["lr"] = _check_lr(group["lr"])
        if _GROUP_LABEL in group:
            check(isinstance(group[_GROUP_LABEL], str), _GROUP_LABEL, group[_GROUP_LABEL], "a string")

    def _state_names(self, group: dict) -> tuple[str, ...]:
        """The arrays `state[name]` holds once a param of this group has stepped."""
        return ()

    # -- the update ------------------------------------------------------------------------------
    def step(self, lr_scale: float = 1.0) -> None:
        """One update of every param with lr = group["lr"] * lr_scale (a schedule's multiplier)."""
        check(_is_number(lr_scale) and math.isfinite(lr_scale) and lr_scale >= 0, "lr_scale", lr_scale,
              "a finite number >= 0")
        if self._scratch is None:
            self._scratch = self._make_scratch()
        lr_scale = float(lr_scale)  # a NumPy scalar would upcast float32 params' arithmetic
        for group in self.param_groups:
            self._step_group(group, group["lr"] * lr_scale)
        self.steps += 1

    def _step_group(self, group: dict, lr: float) -> None:  # pragma: no cover - every optimizer overrides it
        raise NotImplementedError

    def _make_scratch(self) -> dict[str, tuple[np.ndarray, ...]]:
        """Per-param scratch arrays, as views into flat buffers sized to the largest param.

        Temporaries live only inside one param's update, so all params share the
        same few buffers: the memory is `_NUM_SCRATCH` x the largest param, and
        nothing is allocated (or page-faulted again) on later steps.
        """
        sizes: dict[np.dtype, int] = {}
        for _, p in self._named_params():
            sizes[p.value.dtype] = max(sizes.get(p.value.dtype, 0), p.value.size)
        pools = {dt: [np.empty(n, dtype=dt) for _ in range(self._NUM_SCRATCH)] for dt, n in sizes.items()}
        return {name: tuple(buf[: p.value.size].reshape(p.value.shape) for buf in pools[p.value.dtype])
                for name, p in self._named_params()}

    def zero_grad(self) -> None:
        """Set every grad to 0 in place (layers accumulate with +=)."""
        for _, p in self._named_params():
            p.grad.fill(0)

    def _named_params(self):
        for group in self.param_groups:
            yield from group["params"]

    # -- accounting ------------------------------------------------------------------------------
    @property
    def state_per_param(self) -> int:
        """State numbers this optimizer keeps per parameter, with the first group's settings."""
        return len(self._state_names(self.param_groups[0]))

    def state_numbers(self, num_params: int) -> int:
        """State numbers kept for `num_params` parameters (memory = this x itemsize)."""
        return int(num_params) * self.state_per_param

    # -- save / load -----------------------------------------------------------------------------
    def state_dict(self) -> tuple[dict[str, np.ndarray], dict]:
        """(arrays keyed "<param name>/<state name>", JSON-serialisable meta). Arrays are copies."""
        arrays = {f"{name}/{key}": value.copy() for name, st in self.state.items() for key, value in st.items()}
        groups = []
        for group in self.param_groups:
            g = {k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items() if k != "params"}
            g["params"] = [name for name, _ in group["params"]]
            groups.append(g)
        meta = {"optimizer": type(self).__name__, "steps": self.steps,
                "param_steps": dict(self.param_steps), "param_groups": groups}
        return arrays, meta

    def load_state_dict(self, arrays: dict[str, np.ndarray], meta: dict) -> None:
        """Restore a `state_dict()` exactly, hyper-parameters included (as torch does).

        Everything is validated before anything changes; a mismatch raises
        CheckpointError saying what differs.
        """
        def fail(msg: str):
            raise CheckpointError(msg)

        if not isinstance(meta, dict) or not isinstance(arrays, dict):
            fail("The optimizer state is not in the expected form (a dict of arrays and a dict of metadata).")
        kind = type(self).__name__
        if meta.get("optimizer") != kind:
            fail(f"The checkpoint holds {meta.get('optimizer')!r} optimizer state but this run uses {kind!r}: "
                 f"choose the same optimizer to resume, or start without the optimizer state.")
        steps = meta.get("steps")
        if not _is_int(steps) or steps < 0:
            fail(f"The optimizer state has an invalid step count {steps!r}.")
        saved_groups = meta.get("param_groups")
        if not isinstance(saved_groups, list) or len(saved_groups) != len(self.param_groups):
            n = len(saved_groups) if isinstance(saved_groups, list) else "no"
            fail(f"The optimizer state has {n} parameter groups but this optimizer has "
                 f"{len(self.param_groups)} (for example LoRA+ on in one and off in the other).")
        new_groups = []
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if not isinstance(saved, dict) or not isinstance(saved.get("params"), list):
                fail(f"Parameter group {i} of the optimizer state is malformed.")
            names = [name for name, _ in group["params"]]
            missing = sorted(set(names) - set(map(str, saved["params"])))
            unexpected = sorted(set(map(str, saved["params"])) - set(names))
            if missing or unexpected:
                fail(f"The optimizer state does not match the model's trainable parameters (group {i}): "
                     f"missing {missing}, unexpected {unexpected}.")
            keys = set(group) - {"params"}
            if set(saved) - {"params"} != keys:
                fail(f"Parameter group {i} of the optimizer state has hyper-parameters "
                     f"{sorted(set(saved) - {'params'})}, expected {sorted(keys)}.")
            new = {**{k: saved[k] for k in keys}, "params": group["params"]}
            try:
                self._check_group(new)
            except ConfigError as e:
                fail(f"The optimizer state holds an invalid hyper-parameter: {e}")
            new_groups.append(new)

        param_steps = meta.get("param_steps")
        all_params = {name: (p, g) for g in new_groups for name, p in g["params"]}
        if (not isinstance(param_steps, dict) or set(param_steps) - set(all_params)
                or not all(_is_int(v) and v >= 0 for v in param_steps.values())):
            fail("The optimizer state has invalid per-parameter step counts.")
        param_steps = {k: int(v) for k, v in param_steps.items() if v > 0}

        new_state: dict[str, dict[str, np.ndarray]] = {name: {} for name in param_steps}
        for key, value in arrays.items():
            name, _, sname = str(key).rpartition("/")
            if name not in all_params:
                fail(f"The optimizer state has an entry {key!r} for a parameter this model does not train.")
            p, g = all_params[name]
            if sname not in self._state_names(g):
                fail(f"The optimizer state has an unexpected entry {key!r}; {kind} with these settings keeps "
                     f"{list(self._state_names(g))}.")
            if name not in new_state:
                fail(f"The optimizer state has {key!r} but records no step for {name!r}.")
            value = np.asarray(value)
            if value.shape != p.value.shape or not np.issubdtype(value.dtype, np.floating):
                fail(f"The optimizer state {key!r} has shape {value.shape} and dtype {value.dtype}; "
                     f"the parameter is {p.value.shape} {p.value.dtype}.")
            new_state[name][sname] = np.array(value, dtype=p.value.dtype, copy=True)
        for name, st in new_state.items():
            missing = sorted(set(self._state_names(all_params[name][1])) - set(st))
            if missing:
                fail(f"The optimizer state for {name!r} is missing {missing}.")

        for group, new in zip(self.param_groups, new_groups):
            group.clear()
            group.update(new)
        self.state = new_state
        self.param_steps = param_steps
        self.steps = int(steps)

    def __repr__(self) -> str:
        groups = ", ".join(
            "{" + ", ".join(f"{k}={v!r}" for k, v in g.items() if k != "params") + f", {len(g['params'])} params}}"
            for g in self.param_groups)
        return f"{type(self).__name__}(steps={self.steps}, groups=[{groups}])"


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum (and Nesterov), as torch.optim.SGD.

        g_t <- grad f(theta_{t-1})
        if lambda != 0:  g_t <- g_t + lambda * theta_{t-1}
        if mu != 0:
            if t > 1:  b_t <- mu * b_{t-1} + (1 - tau) * g_t
            else:      b_t <- g_t
            if nesterov:  g_t <- g_t + mu * b_t
            else:         g_t <- b_t
        theta_t <- theta_{t-1} - gamma * g_t

    gamma = lr, lambda = weight_decay, mu = momentum, tau = dampening.
    Nesterov needs momentum > 0 and dampening = 0.
    """

    _NUM_SCRATCH = 2

    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                                      weight_decay=weight_decay))

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        group["momentum"] = _check_unit(group["momentum"], "momentum")
        d = group["dampening"]
        check(_is_number(d) and 0 <= d <= 1, "dampening", d, "a number in [0, 1]")
        group["dampening"] = float(d)
        group["nesterov"] = _check_bool(group["nesterov"], "nesterov")
        group["weight_decay"] = _check_weight_decay(group["weight_decay"])
        if group["nesterov"]:
            check(group["momentum"] > 0, "momentum", group["momentum"], "> 0 when nesterov=True")
            check(group["dampening"] == 0, "dampening", group["dampening"], "0 when nesterov=True")

    def _state_names(self, group: dict) -> tuple[str, ...]:
        return ("momentum_buffer",) if group["momentum"] != 0 else ()

    def _step_group(self, group: dict, lr: float) -> None:
        wd, mu, damp, nesterov = group["weight_decay"], group["momentum"], group["dampening"], group["nesterov"]
        state, steps, scratch = self.state, self.param_steps, self._scratch
        for name, p in group["params"]:
            g = p.grad
            t1, t2 = scratch[name]
            steps[name] = steps.get(name, 0) + 1
            if wd != 0.0:
                np.multiply(p.value, wd, out=t1)
                t1 += g  # g + wd * p, in scratch: p.grad itself is left as the model computed it
                g = t1
            if mu != 0.0:
                st = state.get(name)
                if st is None:  # first step: the buffer starts as the gradient itself
                    buf = g.copy()
                    state[name] = {"momentum_buffer": buf}
                else:
                    buf = st["momentum_buffer"]
                    buf *= mu
                    if damp == 0.0:
                        buf += g
                    else:  # nesterov is off here, so g is not needed after this: t1 may be overwritten
                        np.multiply(g, 1.0 - damp, out=t1)
                        buf += t1
                if nesterov:
                    np.multiply(buf, mu, out=t2)
                    t2 += g
                    g = t2
                else:
                    g = buf
            else:
                state.setdefault(name, {})
            np.multiply(g, lr, out=t1)
            p.value -= t1


class RMSprop(Optimizer):
    """RMSprop, as torch.optim.RMSprop (eps added after the square root).

        v_0 <- 0,  b_0 <- 0,  g_ave_0 <- 0
        g_t <- grad f(theta_{t-1})
        if lambda != 0:  g_t <- g_t + lambda * theta_{t-1}
        v_t <- alpha * v_{t-1} + (1 - alpha) * g_t^2
        v~_t <- v_t
        if centered:
            g_ave_t <- alpha * g_ave_{t-1} + (1 - alpha) * g_t
            v~_t <- v~_t - (g_ave_t)^2
        if mu > 0:
            b_t <- mu * b_{t-1} + g_t / (sqrt(v~_t) + eps)
            theta_t <- theta_{t-1} - gamma * b_t
        else:
            theta_t <- theta_{t-1} - gamma * g_t / (sqrt(v~_t) + eps)

    gamma = lr, lambda = weight_decay, mu = momentum. State: square_avg (v),
    momentum_buffer (b) when momentum > 0, grad_avg (g_ave) when centered.
    """

    _NUM_SCRATCH = 2

    def __init__(self, params, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered))

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        group["alpha"] = _check_unit(group["alpha"], "alpha")
        group["eps"] = _check_eps(group["eps"])
        group["weight_decay"] = _check_weight_decay(group["weight_decay"])
        group["momentum"] = _check_unit(group["momentum"], "momentum")
        group["centered"] = _check_bool(group["centered"], "centered")

    def _state_names(self, group: dict) -> tuple[str, ...]:
        return (("square_avg",) + (("momentum_buffer",) if group["momentum"] > 0 else ())
                + (("grad_avg",) if group["centered"] else ()))

    def _step_group(self, group: dict, lr: float) -> None:
        alpha, eps, wd = group["alpha"], group["eps"], group["weight_decay"]
        mu, centered = group["momentum"], group["centered"]
        state, steps, scratch = self.state, self.param_steps, self._scratch
        for name, p in group["params"]:
            st = state.get(name)
            if st is None:
                st = state[name] = {k: np.zeros_like(p.value) for k in self._state_names(group)}
            steps[name] = steps.get(name, 0) + 1
            g = p.grad
            t1, t2 = scratch[name]
            if wd != 0.0:
                np.multiply(p.value, wd, out=t1)
                t1 += g
                g = t1
            sq = st["square_avg"]
            sq *= alpha
            np.multiply(g, 1.0 - alpha, out=t2)  # addcmul: v + ((1 - alpha) * g) * g
            t2 *= g
            sq += t2
            if centered:
                ga = st["grad_avg"]
                ga *= alpha
                np.multiply(g, 1.0 - alpha, out=t2)
                ga += t2
                np.multiply(ga, ga, out=t2)
                np.subtract(sq, t2, out=t2)
                avg = np.sqrt(t2, out=t2)
            else:
                avg = np.sqrt(sq, out=t2)
            avg += eps
            if mu > 0:
                buf = st["momentum_buffer"]
                buf *= mu
                np.divide(g, avg, out=t2)
                buf += t2
                np.multiply(buf, lr, out=t2)
                p.value -= t2
            else:  # addcdiv: p + ((-lr) * g) / avg
                np.multiply(g, lr, out=t1)
                t1 /= avg
                p.value -= t1


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), as torch.optim.Adam: L2 weight decay added to the gradient.

        m_0 <- 0,  v_0 <- 0
        g_t <- grad f(theta_{t-1})
        if lambda != 0:  g_t <- g_t + lambda * theta_{t-1}
        m_t <- beta1 * m_{t-1} + (1 - beta1) * g_t
        v_t <- beta2 * v_{t-1} + (1 - beta2) * g_t^2
        m^_t <- m_t / (1 - beta1^t)
        v^_t <- v_t / (1 - beta2^t)
        theta_t <- theta_{t-1} - gamma * m^_t / (sqrt(v^_t) + eps)

    gamma = lr, lambda = weight_decay. Computed in torch's form:
    denom = sqrt(v_t) / sqrt(1 - beta2^t) + eps, theta -= (gamma / (1 - beta1^t)) * m_t / denom.
    State: exp_avg (m), exp_avg_sq (v); t counts this param's steps.
    """

    _NUM_SCRATCH = 2
    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        group["betas"] = _check_betas(group["betas"])
        group["eps"] = _check_eps(group["eps"])
        group["weight_decay"] = _check_weight_decay(group["weight_decay"])

    def _state_names(self, group: dict) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq")

    def _step_group(self, group: dict, lr: float) -> None:
        (b1, b2), eps, wd = group["betas"], group["eps"], group["weight_decay"]
        decoupled = self._decoupled
        state, steps, scratch = self.state, self.param_steps, self._scratch
        for name, p in group["params"]:
            st = state.get(name)
            if st is None:
                st = state[name] = {"exp_avg": np.zeros_like(p.value), "exp_avg_sq": np.zeros_like(p.value)}
            t = steps[name] = steps.get(name, 0) + 1
            m, v = st["exp_avg"], st["exp_avg_sq"]
            g = p.grad
            t1, t2 = scratch[name]
            if wd != 0.0:
                if decoupled:  # AdamW: shrink the weights first, the gradient stays untouched
                    p.value *= 1.0 - lr * wd
                else:
                    np.multiply(p.value, wd, out=t1)
                    t1 += g
                    g = t1
            m *= b1
            np.multiply(g, 1.0 - b1, out=t2)
            m += t2
            v *= b2
            np.multiply(g, 1.0 - b2, out=t2)  # addcmul: v + ((1 - beta2) * g) * g
            t2 *= g
            v += t2
            bias_correction1 = 1.0 - b1 ** t
            bias_correction2_sqrt = math.sqrt(1.0 - b2 ** t)
            denom = np.sqrt(v, out=t2)
            denom /= bias_correction2_sqrt
            denom += eps
            # addcdiv: p + ((-step_size) * m) / denom; g (possibly in t1) is no longer needed
            np.multiply(m, lr / bias_correction1, out=t1)
            t1 /= denom
            p.value -= t1


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter, 2019), as torch.optim.AdamW: decoupled weight decay.

        m_0 <- 0,  v_0 <- 0
        g_t <- grad f(theta_{t-1})
        theta_t <- theta_{t-1} - gamma * lambda * theta_{t-1}
        m_t <- beta1 * m_{t-1} + (1 - beta1) * g_t
        v_t <- beta2 * v_{t-1} + (1 - beta2) * g_t^2
        m^_t <- m_t / (1 - beta1^t)
        v^_t <- v_t / (1 - beta2^t)
        theta_t <- theta_t - gamma * m^_t / (sqrt(v^_t) + eps)

    gamma = lr, lambda = weight_decay: the decay never enters m or v, unlike Adam's L2.
    """

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


def make_optimizer(name: str, params, lr: float, *, weight_decay: float = 0.0, momentum: float = 0.9,
                   betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                   loraplus_ratio: float = 1.0) -> Optimizer:
    """Build an optimizer by name (one of OPTIMIZERS) over `(name, Param)` pairs.

    "momentum" and "nesterov" are SGD with `momentum`; "rmsprop" is plain
    RMSprop (alpha 0.99, no momentum, not centered). With LoRA+ (Hayou et al.,
    2024), `loraplus_ratio` > 1 puts the `lora_B` params in their own group
    at `loraplus_ratio * lr`; the others keep `lr`.
    """
    check(name in OPTIMIZERS, "optimizer", name, f"one of {OPTIMIZERS}")
    lr = _check_lr(lr)
    weight_decay = _check_weight_decay(weight_decay)
    momentum = _check_unit(momentum, "momentum")
    if name in ("momentum", "nesterov"):
        check(momentum > 0, "momentum", momentum, f"in (0, 1) for the {name!r} optimizer")
    betas = _check_betas(betas)
    eps = _check_eps(eps)
    check(_is_number(loraplus_ratio) and math.isfinite(loraplus_ratio) and loraplus_ratio >= 1,
          "loraplus_ratio", loraplus_ratio, "a finite number >= 1 (1 turns LoRA+ off)")

    params = list(params)
    if loraplus_ratio != 1:
        check(not any(isinstance(item, dict) for item in params), "params", "param groups",
              "(name, Param) pairs when loraplus_ratio != 1 (LoRA+ makes the groups)")
        b = [item for item in params
             if isinstance(item, tuple) and len(item) == 2 and getattr(item[1], "role", None) == "lora_B"]
        b_ids = {id(item) for item in b}
        rest = [item for item in params if id(item) not in b_ids]
        if b:  # no lora_B (full fine-tuning): one group, LoRA+ has nothing to act on
            params = ([{"params": rest, _GROUP_LABEL: "default"}] if rest else []) + [
                {"params": b, "lr": lr * float(loraplus_ratio), _GROUP_LABEL: "lora_B"}]

    if name == "sgd":
        return SGD(params, lr, weight_decay=weight_decay)
    if name in ("momentum", "nesterov"):
        return SGD(params, lr, momentum=momentum, nesterov=name == "nesterov", weight_decay=weight_decay)
    if name == "rmsprop":
        return RMSprop(params, lr, eps=eps, weight_decay=weight_decay)
    cls = Adam if name == "adam" else AdamW
    return cls(params, lr, betas=betas, eps=eps, weight_decay=weight_decay)


# -- learning-rate schedules: multipliers of the base lr, for a 0-based step ------------------
def constant_schedule(step: int) -> float:
    """The base lr at every step."""
    return 1.0


def _warmup_cosine(step: int, total_steps: int, warmup_steps: int, min_ratio: float) -> float:
    if step < 0:  # a negative multiplier would turn descent into ascent
        check(False, "step", step, "a whole number >= 0")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    # The cosine starts at the peak (the last warm-up step, or step 0) and ends at the last step.
    peak = max(warmup_steps - 1, 0)
    span = total_steps - 1 - peak
    if span <= 0:
        return 1.0  # a single-step run: its only step is the peak
    progress = min((step - peak) / span, 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _check_schedule_args(total_steps, warmup_steps, min_ratio) -> None:
    check(_is_int(total_steps) and total_steps >= 1, "total_steps", total_steps, "a whole number >= 1")
    check(_is_int(warmup_steps) and 0 <= warmup_steps < total_steps, "warmup_steps", warmup_steps,
          f"a whole number in [0, total_steps) = [0, {total_steps})")
    check(_is_number(min_ratio) and 0 <= min_ratio <= 1, "min_ratio", min_ratio, "a number in [0, 1]")


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, min_ratio: float = 0.0) -> float:
    """Linear warm-up then cosine decay, as a multiplier of the base lr.

    Steps 0 .. warmup_steps-1 rise linearly, (step + 1) / warmup_steps, to 1;
    then a half cosine goes from 1 (at the last warm-up step, or step 0) down
    to `min_ratio` at the last step, total_steps - 1, and stays there.
    With min_ratio = 0 this is HF transformers' get_cosine_schedule_with_warmup,
    except that warm-up starts at 1/warmup_steps (no wasted step at lr 0).
    """
    _check_schedule_args(total_steps, warmup_steps, min_ratio)
    check(_is_int(step) and step >= 0, "step", step, "a whole number >= 0")
    return _warmup_cosine(int(step), int(total_steps), int(warmup_steps), float(min_ratio))


def make_schedule(name: str, total_steps: int, warmup_steps: int = 0,
                  min_ratio: float = 0.0) -> Callable[[int], float]:
    """A function step -> lr multiplier. `warmup_steps` and `min_ratio` only shape "warmup_cosine"."""
    check(name in SCHEDULES, "schedule", name, f"one of {SCHEDULES}")
    _check_schedule_args(total_steps, warmup_steps, min_ratio)
    if name == "constant":
        return constant_schedule
    return functools.partial(_warmup_cosine, total_steps=int(total_steps), warmup_steps=int(warmup_steps),
                             min_ratio=float(min_ratio))


# -- gradient norm and clipping ------------------------------------------------------------------
def _grads(params: Iterable) -> list[np.ndarray]:
    """Grads of Param objects or (name, Param) pairs."""
    return [(item[1] if isinstance(item, tuple) else item).grad for item in params]


def grad_norm(params: Iterable) -> float:
    """Global L2 norm of all grads, as one vector."""
    return math.sqrt(sum(float(np.vdot(g, g)) for g in _grads(params)))


def clip_grad_norm(params: Iterable, max_norm: float) -> float:
    """Scale grads in place so their global L2 norm is at most `max_norm`, as torch.nn.utils.clip_grad_norm_.

    clip_coef = max_norm / (total_norm + 1e-6), clamped to 1: like torch, grads
    are scaled whenever total_norm + 1e-6 > max_norm. Returns the norm before
    clipping. A non-finite norm leaves the grads untouched (the trainer reports it).
    """
    check(_is_number(max_norm) and math.isfinite(max_norm) and max_norm > 0, "max_norm", max_norm,
          "a finite number > 0")
    grads = _grads(params)
    total = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:  # false for NaN too
        for g in grads:
            g *= coef
    return total
