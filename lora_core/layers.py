"""Layers with hand-written forward and backward passes.

Every layer caches in `forward` what `backward` needs, accumulates parameter
gradients into `param.grad` (`+=`, so shared weights add up) and returns the
gradient with respect to its input. Shapes are written next to each product.
Activations are row-major: a batch is `(batch, features)`, or
`(batch, tokens, features)` where a layer works on sequences.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import check
from .module import Module, Param

LORA_INITS = ("kaiming", "gaussian", "pissa")


def kaiming_uniform(rng: np.random.Generator, shape: tuple[int, int], dtype) -> np.ndarray:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's nn.Linear default (kaiming_uniform_ with a=sqrt(5))."""
    bound = 1.0 / math.sqrt(shape[1])
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


class Linear(Module):
    """y = x W^T + b with W (d_out, d_in), as torch.nn.Linear.

    A layer whose input is data sets `need_input_grad = False` and skips the `dy @ W` product.
    """

    need_input_grad = True

    def __init__(self, d_in: int, d_out: int, *, bias: bool = True, rng: np.random.Generator | None = None,
                 dtype=np.float64, trainable: bool = True):
        super().__init__()
        check(isinstance(d_in, int) and d_in >= 1, "d_in", d_in, "a whole number >= 1")
        check(isinstance(d_out, int) and d_out >= 1, "d_out", d_out, "a whole number >= 1")
        rng = rng if rng is not None else np.random.default_rng(0)
        self.d_in, self.d_out = d_in, d_out
        self.weight = Param(kaiming_uniform(rng, (d_out, d_in), dtype), trainable=trainable, role="weight")
        bound = 1.0 / math.sqrt(d_in)
        self.bias = (Param(rng.uniform(-bound, bound, size=d_out).astype(dtype), trainable=trainable, role="bias")
                     if bias else None)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        y = x @ self.weight.value.T  # (..., d_in) @ (d_in, d_out) -> (..., d_out)
        if self.bias is not None:
            y += self.bias.value
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        x = self._x
        if self.weight.trainable:
            # (d_out, ...) @ (..., d_in) -> (d_out, d_in), summed over every leading axis
            self.weight.grad += dy.reshape(-1, self.d_out).T @ x.reshape(-1, self.d_in)
        if self.bias is not None and self.bias.trainable:
            self.bias.grad += dy.reshape(-1, self.d_out).sum(axis=0)
        if not self.need_input_grad:
            return None
        return dy @ self.weight.value  # (..., d_out) @ (d_out, d_in) -> (..., d_in)


class LoRALinear(Module):
    """A frozen `Linear` plus a trainable low-rank update, as in Hu et al. (2021).

        y = x W0^T + b + scale * dropout(x) A^T B^T,   A (r, d_in), B (d_out, r)
        scale = alpha / r, or alpha / sqrt(r) with rsLoRA (Kalajdzievski, 2023)

    `B @ A` is never formed on the forward or backward path: the input goes
    through the thin `(batch, r)` bottleneck instead. `B` starts at zero, so
    at initialisation the layer equals its base exactly. With `init="pissa"`
    (Meng et al., 2024) A and B start from the top-r singular triplets of W0
    and the base keeps only the residual, so the sum is still W0.

    The base's weight and bias are this layer's own `weight` and `bias`, so a
    LoRA model's parameter names equal those of its base plus `lora_A`/`lora_B`.
    """

    def __init__(self, base: Linear, r: int, alpha: float, *, use_rslora: bool = False, dropout: float = 0.0,
                 init: str = "kaiming", rng: np.random.Generator | None = None):
        super().__init__()
        limit = min(base.d_in, base.d_out)
        check(isinstance(r, (int, np.integer)) and 1 <= r <= limit, "r", r,
              f"a whole number from 1 to min(d_in, d_out) = {limit}")
        check(np.isfinite(alpha) and alpha > 0, "alpha", alpha, "a number > 0")
        check(0.0 <= dropout < 1.0, "dropout", dropout, "in [0, 1)")
        check(init in LORA_INITS, "init", init, f"one of {LORA_INITS}")
        rng = rng if rng is not None else np.random.default_rng(0)
        object.__setattr__(self, "base", base)  # not a child: its params are registered below
        self.d_in, self.d_out, self.r = base.d_in, base.d_out, int(r)
        self.alpha, self.use_rslora, self.dropout, self.init = float(alpha), bool(use_rslora), float(dropout), init
        self.scale = self.alpha / (math.sqrt(self.r) if self.use_rslora else self.r)
        self.rng = rng  # dropout masks; the trainer reseeds it every step for reproducibility
        self.merged = False
        self.active = True  # False: the layer acts as its base alone (to see what the adapter adds)
        base.weight.trainable = False
        if base.bias is not None:
            base.bias.trainable = False
        self.weight = base.weight
        self.bias = base.bias
        dtype = base.weight.value.dtype
        if init == "pissa":
            a, b = self._pissa_factors()
        else:
            a = (kaiming_uniform(rng, (self.r, self.d_in), dtype) if init == "kaiming"
                 else (rng.standard_normal((self.r, self.d_in)) / self.r).astype(dtype))  # PEFT's "gaussian"
            b = np.zeros((self.d_out, self.r), dtype=dtype)
        self.lora_A = Param(a, role="lora_A")
        self.lora_B = Param(b, role="lora_B")

    @property
    def need_input_grad(self) -> bool:
        return self.base.need_input_grad

    @need_input_grad.setter
    def need_input_grad(self, value: bool) -> None:
        self.base.need_input_grad = value

    def _pissa_factors(self) -> tuple[np.ndarray, np.ndarray]:
        """A, B from the top-r SVD of W0 with scale folded in; W0 keeps the residual."""
        w0 = self.weight.value
        u, s, vt = np.linalg.svd(w0, full_matrices=False)
        root = np.sqrt(s[: self.r] / self.scale)
        a = root[:, None] * vt[: self.r]  # (r, d_in)
        b = u[:, : self.r] * root[None, :]  # (d_out, r)
        w0 -= self.scale * (b @ a)  # once, at init: the base becomes the residual
        return a.astype(w0.dtype), b.astype(w0.dtype)

    def delta_weight(self) -> np.ndarray:
        """dW = scale * B @ A, (d_out, d_in): for inspection and merging, never the hot path."""
        return self.scale * (self.lora_B.value @ self.lora_A.value)

    def merge(self) -> None:
        """W0 <- W0 + dW, so inference costs one matmul. The adapter is kept for `unmerge`."""
        if not self.merged:
            self.weight.value += self.delta_weight()
            self.merged = True

    def unmerge(self) -> None:
        """W0 <- W0 - dW: undo `merge` (exact up to float rounding)."""
        if self.merged:
            self.weight.value -= self.delta_weight()
            self.merged = False

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = self.base.forward(x)  # (..., d_in) -> (..., d_out)
        self._skipped = self.merged or not self.active
        if self._skipped:
            return y
        if self.training and self.dropout > 0.0:
            keep = 1.0 - self.dropout
            self._mask = (self.rng.random(x.shape) < keep).astype(x.dtype) / keep
            xd = x * self._mask
        else:
            self._mask = None
            xd = x
        self._xd = xd
        self._h = xd @ self.lora_A.value.T  # (..., d_in) @ (d_in, r) -> (..., r)
        y += self.scale * (self._h @ self.lora_B.value.T)  # (..., r) @ (r, d_out) -> (..., d_out)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dx = self.base.backward(dy)  # frozen base: only dy @ W0, (..., d_in)
        if self._skipped:
            return dx
        dy2 = dy.reshape(-1, self.d_out)
        dh = self.scale * (dy @ self.lora_B.value)  # (..., d_out) @ (d_out, r) -> (..., r)
        if self.lora_B.trainable:
            # (d_out, N) @ (N, r) -> (d_out, r)
            self.lora_B.grad += self.scale * (dy2.T @ self._h.reshape(-1, self.r))
        if self.lora_A.trainable:
            # (r, N) @ (N, d_in) -> (r, d_in)
            self.lora_A.grad += dh.reshape(-1, self.r).T @ self._xd.reshape(-1, self.d_in)
        if dx is None:  # the input is data: no gradient to pass on
            return None
        dxd = dh @ self.lora_A.value  # (..., r) @ (r, d_in) -> (..., d_in)
        if self._mask is not None:
            dxd *= self._mask
        dx += dxd
        return dx


class ReLU(Module):
    def forward(self, x):
        self._mask = x > 0
        return x * self._mask

    def backward(self, dy):
        return dy * self._mask


class Tanh(Module):
    def forward(self, x):
        self._y = np.tanh(x)
        return self._y

    def backward(self, dy):
        return dy * (1.0 - self._y * self._y)


class GELU(Module):
    """GELU with the tanh approximation (torch.nn.GELU(approximate="tanh"))."""

    _C = math.sqrt(2.0 / math.pi)

    def forward(self, x):
        self._x = x
        self._t = np.tanh(self._C * (x + 0.044715 * x ** 3))
        return 0.5 * x * (1.0 + self._t)

    def backward(self, dy):
        x, t = self._x, self._t
        dt = self._C * (1.0 + 3 * 0.044715 * x * x) * (1.0 - t * t)
        return dy * (0.5 * (1.0 + t) + 0.5 * x * dt)


ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "gelu": GELU}


class Embedding(Module):
    """Rows of a table: ids (...,) int -> (..., dim)."""

    def __init__(self, num: int, dim: int, *, rng: np.random.Generator | None = None, dtype=np.float64,
                 trainable: bool = True):
        super().__init__()
        rng = rng if rng is not None else np.random.default_rng(0)
        self.num, self.dim = num, dim
        self.weight = Param(rng.standard_normal((num, dim)).astype(dtype), trainable=trainable, role="embedding")

    def forward(self, ids: np.ndarray) -> np.ndarray:
        self._ids = ids
        return self.weight.value[ids]  # (..., ) -> (..., dim)

    def backward(self, dy: np.ndarray) -> None:
        if self.weight.trainable:
            # scatter-add each row's gradient back to its id; repeated ids add up
            np.add.at(self.weight.grad, self._ids.reshape(-1), dy.reshape(-1, self.dim))
        return None  # ids have no gradient


class Flatten(Module):
    """(batch, a, b, ...) -> (batch, a*b*...)."""

    def forward(self, x):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self._shape)


class Sequential(Module):
    """Layers applied in order; children are named by the caller (`fc1`, `act1`, ...)."""

    def __init__(self, **layers: Module):
        super().__init__()
        for name, layer in layers.items():
            setattr(self, name, layer)

    def forward(self, x):
        for layer in self._children.values():
            x = layer.forward(x)
        return x

    def backward(self, dy):
        for layer in reversed(list(self._children.values())):
            dy = layer.backward(dy)
        return dy


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


class CrossAttention(Module):
    """Single-head attention of queries over a context (text queries over image patches).

        Q = q Wq^T (batch, nq, d), K = c Wk^T, V = c Wv^T (batch, nc, d)
        P = softmax(Q K^T / sqrt(d)) (batch, nq, nc);  out = (P V) Wo^T (batch, nq, d_out)

    The four projections are `Linear` children (`q`, `k`, `v`, `o`), so LoRA can wrap any of them.
    `forward` takes the pair `(queries, context)` and `backward` returns the pair of gradients.
    """

    def __init__(self, d_query: int, d_context: int, d_attn: int, d_out: int, *,
                 rng: np.random.Generator | None = None, dtype=np.float64):
        super().__init__()
        rng = rng if rng is not None else np.random.default_rng(0)
        self.d_attn = d_attn
        self.q = Linear(d_query, d_attn, bias=False, rng=rng, dtype=dtype)
        self.k = Linear(d_context, d_attn, bias=False, rng=rng, dtype=dtype)
        self.v = Linear(d_context, d_attn, bias=False, rng=rng, dtype=dtype)
        self.o = Linear(d_attn, d_out, rng=rng, dtype=dtype)

    def forward(self, inputs):
        queries, context = inputs  # (batch, nq, d_query), (batch, nc, d_context)
        q, k, v = self.q.forward(queries), self.k.forward(context), self.v.forward(context)
        self._q, self._k, self._v = q, k, v
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(self.d_attn)  # (b, nq, d) @ (b, d, nc) -> (b, nq, nc)
        self._p = softmax(scores)
        return self.o.forward(self._p @ v)  # (b, nq, nc) @ (b, nc, d) -> (b, nq, d) -> (b, nq, d_out)

    def backward(self, dy):
        d_att = self.o.backward(dy)  # (b, nq, d)
        p, q, k, v = self._p, self._q, self._k, self._v
        dp = d_att @ v.transpose(0, 2, 1)  # (b, nq, d) @ (b, d, nc) -> (b, nq, nc)
        dv = p.transpose(0, 2, 1) @ d_att  # (b, nc, nq) @ (b, nq, d) -> (b, nc, d)
        # softmax backward, row by row: dS = P * (dP - sum(dP * P))
        ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True)) / math.sqrt(self.d_attn)
        dq = ds @ k  # (b, nq, nc) @ (b, nc, d) -> (b, nq, d)
        dk = ds.transpose(0, 2, 1) @ q  # (b, nc, nq) @ (b, nq, d) -> (b, nc, d)
        d_queries = self.q.backward(dq)
        d_context = self.k.backward(dk) + self.v.backward(dv)
        return d_queries, d_context
