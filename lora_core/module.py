"""Parameters and modules: the two small abstractions every layer builds on.

A `Param` is an array with its gradient and two labels: whether the optimizer
may change it (`trainable`) and what it is (`role`), which LoRA+ and the
accounting use. A `Module` owns params and child modules, found in the order
they were assigned, so names read like PyTorch's `state_dict` keys
(`fc1.weight`, `fc1.lora_A`, ...). Each module has a hand-written `forward`
that caches what `backward` needs, and a `backward` that accumulates into
`param.grad` and returns the gradient with respect to the input.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

# What a parameter is, so optimizers (LoRA+) and accounting can group them.
ROLES = ("weight", "bias", "lora_A", "lora_B", "embedding")


class Param:
    """An array with its gradient. `grad` has the same shape and dtype."""

    __slots__ = ("value", "grad", "trainable", "role")

    def __init__(self, value: np.ndarray, *, trainable: bool = True, role: str = "weight"):
        if role not in ROLES:
            raise ValueError(f"role={role!r} is not one of {ROLES}")
        self.value = value
        self.grad = np.zeros_like(value)
        self.trainable = trainable
        self.role = role

    @property
    def size(self) -> int:
        return int(self.value.size)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    def __repr__(self) -> str:
        flag = "trainable" if self.trainable else "frozen"
        return f"Param({self.role}, shape={self.value.shape}, {flag})"


class Module:
    """Base class: registers `Param` and `Module` attributes in assignment order."""

    def __init__(self) -> None:
        object.__setattr__(self, "_params", {})
        object.__setattr__(self, "_children", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value) -> None:
        if name.startswith("_"):  # forward caches: the hot path, never params
            object.__setattr__(self, name, value)
            return
        if "_params" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() first")
        # Assigning to an existing name keeps its place: Sequential runs children in this order.
        if isinstance(value, Param):
            self._children.pop(name, None)
            self._params[name] = value
        elif isinstance(value, Module):
            self._params.pop(name, None)
            self._children[name] = value
        else:
            self._params.pop(name, None)
            self._children.pop(name, None)
        object.__setattr__(self, name, value)

    # -- the computation --------------------------------------------------
    def forward(self, x):  # pragma: no cover - every layer overrides it
        raise NotImplementedError

    def backward(self, grad_out):  # pragma: no cover
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    # -- the tree ----------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """(path, module) for this module and every descendant, depth first."""
        yield prefix, self
        for name, child in self._children.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Param]]:
        """(path, param) for every param, each object once (shared params are not repeated)."""
        seen: set[int] = set()
        for path, module in self.named_modules(prefix):
            for name, param in module._params.items():
                if id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{path}.{name}" if path else name), param

    def parameters(self) -> list[Param]:
        return [p for _, p in self.named_parameters()]

    def trainable_parameters(self) -> list[tuple[str, Param]]:
        return [(n, p) for n, p in self.named_parameters() if p.trainable]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad[...] = 0.0

    def train(self, mode: bool = True) -> "Module":
        """Training mode turns dropout on; `eval()` turns it off."""
        for _, m in self.named_modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def set_trainable(self, trainable: bool) -> "Module":
        for p in self.parameters():
            p.trainable = trainable
        return self

    # -- state ---------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every param value, keyed by path."""
        return {name: p.value.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy values in place; names, shapes and dtypes must match exactly."""
        params = dict(self.named_parameters())
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        if missing or unexpected:
            raise ValueError(f"state does not match the model: missing {missing}, unexpected {unexpected}")
        for name, p in params.items():
            value = np.asarray(state[name])
            if value.shape != p.value.shape:
                raise ValueError(f"{name}: shape {value.shape} does not match the model's {p.value.shape}")
            p.value[...] = value

    def num_parameters(self, trainable: bool | None = None) -> int:
        return sum(p.size for p in self.parameters() if trainable is None or p.trainable == trainable)
