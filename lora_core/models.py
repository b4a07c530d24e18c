"""Models built from the layers: an MLP, a character-level language model and a
two-branch text + image model with three fusions. Each is a `Module` whose
`forward`/`backward` chain the layers' own passes.

`add_lora` turns chosen `Linear` layers of any model into `LoRALinear`, and
`set_method` freezes a model for LoRA, full fine-tuning or head-only training.
"""
from __future__ import annotations

import fnmatch

import numpy as np

from .errors import ConfigError, check
from .layers import ACTIVATIONS, CrossAttention, Embedding, Flatten, Linear, LoRALinear, Sequential

METHODS = ("lora", "full", "head")


def _stack(prefix: str, sizes: list[int], activation: str, rng, dtype, last_activation: bool) -> dict:
    """Linear layers `{prefix}1..n` between `sizes`, with an activation between them."""
    check(activation in ACTIVATIONS, "activation", activation, f"one of {tuple(ACTIVATIONS)}")
    layers = {}
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        layers[f"{prefix}{i}"] = Linear(d_in, d_out, rng=rng, dtype=dtype)
        if i < len(sizes) - 1 or last_activation:
            layers[f"act{i}"] = ACTIVATIONS[activation]()
    return layers


class MLP(Sequential):
    """fc1, act1, fc2, ..., fcN: `sizes = [d_in, hidden..., d_out]`. The last layer is the head."""

    def __init__(self, sizes: list[int], *, activation: str = "relu", rng=None, dtype=np.float64):
        check(len(sizes) >= 2, "sizes", sizes, "at least [d_in, d_out]")
        super().__init__(**_stack("fc", list(sizes), activation, rng, dtype, last_activation=False))
        self.head_paths = (f"fc{len(sizes) - 1}",)


class CharLM(Sequential):
    """Bengio-style character model: embed the last `context` characters, concatenate, MLP to next-char logits.

    ids (batch, context) -> embed (batch, context, emb) -> flatten (batch, context*emb) -> MLP -> (batch, vocab)
    """

    def __init__(self, vocab: int, context: int, emb_dim: int, hidden: list[int], *, activation: str = "tanh",
                 rng=None, dtype=np.float64):
        rng = rng if rng is not None else np.random.default_rng(0)
        layers = {"embed": Embedding(vocab, emb_dim, rng=rng, dtype=dtype), "flatten": Flatten()}
        layers.update(_stack("fc", [context * emb_dim, *hidden, vocab], activation, rng, dtype, last_activation=False))
        super().__init__(**layers)
        self.vocab, self.context = vocab, context
        self.head_paths = (f"fc{len(hidden) + 1}",)

    def backward(self, dy):
        super().backward(dy)  # the embedding returns no input gradient: ids are not differentiable
        return None


FUSIONS = ("late", "early", "attention")


class MultimodalModel(Sequential):
    """Text branch + image branch, fused three ways; the input is the pair `(text, image)`.

    - late:      y = text(x_t) + image(x_i), each branch ends in its own projection to d_out
                 (the original toy: each branch is one projection, no hidden layer)
    - early:     y = fusion(concat(text(x_t), image(x_i)))
    - attention: the encoded text is one query over the encoded image patches
                 (x_i is (batch, patches, patch_dim)), y = head(attend(q, patches))

    Branch modules are `text.*` and `image.*`, so "one adapter per modality" means LoRA on those.
    """

    def __init__(self, d_text: int, d_image: int, d_out: int, *, fusion: str = "late", hidden: int | None = 64,
                 activation: str = "relu", bias: bool = True, rng=None, dtype=np.float64):
        check(fusion in FUSIONS, "fusion", fusion, f"one of {FUSIONS}")
        check(hidden is not None or fusion == "late", "hidden", hidden, "a width when fusion is not 'late'")
        rng = rng if rng is not None else np.random.default_rng(0)
        Sequential.__init__(self)
        self.fusion = fusion
        branch_sizes = [[d, hidden] if hidden else [d] for d in (d_text, d_image)]
        if fusion == "late":  # each branch projects to the output and the projections are summed
            self.text = self._branch(branch_sizes[0], d_out, activation, bias, rng, dtype)
            self.image = self._branch(branch_sizes[1], d_out, activation, bias, rng, dtype)
            self.head_paths = ("text.proj", "image.proj")
        else:
            self.text = Sequential(**_stack("fc", branch_sizes[0], activation, rng, dtype, last_activation=True))
            self.image = Sequential(**_stack("fc", branch_sizes[1], activation, rng, dtype, last_activation=True))
            if fusion == "early":
                self.fuse = Sequential(**_stack("fc", [2 * hidden, hidden], activation, rng, dtype, True),
                                       head=Linear(hidden, d_out, rng=rng, dtype=dtype))
            else:
                self.attn = CrossAttention(hidden, hidden, hidden, hidden, rng=rng, dtype=dtype)
                self.fuse = Sequential(**_stack("fc", [hidden, hidden], activation, rng, dtype, True),
                                       head=Linear(hidden, d_out, rng=rng, dtype=dtype))
            self.head_paths = ("fuse.head",)

    @staticmethod
    def _branch(sizes, d_out, activation, bias, rng, dtype) -> Sequential:
        layers = _stack("fc", sizes, activation, rng, dtype, last_activation=True) if len(sizes) > 1 else {}
        layers["proj"] = Linear(sizes[-1], d_out, bias=bias, rng=rng, dtype=dtype)
        return Sequential(**layers)

    def forward(self, inputs):
        x_text, x_image = inputs
        if self.fusion == "late":
            return self.text.forward(x_text) + self.image.forward(x_image)
        h_text = self.text.forward(x_text)  # (batch, hidden)
        h_image = self.image.forward(x_image)  # (batch, hidden) or (batch, patches, hidden)
        if self.fusion == "early":
            self._split = h_text.shape[-1]
            return self.fuse.forward(np.concatenate([h_text, h_image], axis=-1))  # (batch, 2*hidden)
        attended = self.attn.forward((h_text[:, None, :], h_image))  # (batch, 1, hidden)
        return self.fuse.forward(attended[:, 0, :])

    def backward(self, dy):
        if self.fusion == "late":
            self.text.backward(dy)
            self.image.backward(dy)
            return None
        d = self.fuse.backward(dy)
        if self.fusion == "early":
            d_text, d_image = d[:, : self._split], d[:, self._split:]
        else:
            d_q, d_image = self.attn.backward(d[:, None, :])
            d_text = d_q[:, 0, :]
        self.text.backward(d_text)
        self.image.backward(d_image)
        return None

    def branch_of(self, path: str) -> str:
        """Which modality a module path belongs to: 'text', 'image' or 'fusion'."""
        root = path.split(".", 1)[0]
        return root if root in ("text", "image") else "fusion"

    def parameter_breakdown(self) -> list[dict]:
        """Frozen and trainable parameter counts per branch: [{"branch", "frozen", "trainable"}, ...]."""
        counts: dict[str, dict] = {}
        for name, p in self.named_parameters():
            branch = self.branch_of(name)
            row = counts.setdefault(branch, {"branch": branch, "frozen": 0, "trainable": 0})
            row["trainable" if p.trainable else "frozen"] += p.size
        return list(counts.values())


def _parent(model, path: str):
    parent = model
    *parents, leaf = path.split(".")
    for name in parents:
        parent = getattr(parent, name)
    return parent, leaf


def linear_paths(model) -> list[str]:
    """Paths of every plain `Linear` layer in the model."""
    return [path for path, m in model.named_modules() if type(m) is Linear]


def add_lora(model, targets, r: int, alpha: float, *, use_rslora: bool = False, dropout: float = 0.0,
             init: str = "kaiming", rng=None) -> list[str]:
    """Wrap every `Linear` whose path matches one of `targets` (glob patterns) in a `LoRALinear`.

    Everything else in the model is frozen. Returns the wrapped paths, in model order.
    Each adapter draws its init from the same generator, in model order, so a seed fixes them all.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    paths = [p for p in linear_paths(model) if any(fnmatch.fnmatchcase(p, t) for t in targets)]
    if not paths:
        raise ConfigError(f"targets={list(targets)!r} match no linear layer; the layers are {linear_paths(model)}.")
    model.set_trainable(False)
    for path in paths:
        parent, leaf = _parent(model, path)
        base = getattr(parent, leaf)
        limit = min(base.d_in, base.d_out)
        if r > limit:
            raise ConfigError(f"rank={r} is too large for layer {path} ({base.d_in} -> {base.d_out}): "
                              f"the rank must be at most {limit}.")
        setattr(parent, leaf, LoRALinear(base, r, alpha, use_rslora=use_rslora, dropout=dropout, init=init, rng=rng))
    return paths


def lora_layers(model) -> list[tuple[str, LoRALinear]]:
    return [(path, m) for path, m in model.named_modules() if isinstance(m, LoRALinear)]


def merge_all(model) -> None:
    for _, layer in lora_layers(model):
        layer.merge()


def unmerge_all(model) -> None:
    for _, layer in lora_layers(model):
        layer.unmerge()


def set_method(model, method: str, *, targets=(), r: int = 1, alpha: float = 1.0, **lora_options) -> list[str]:
    """Prepare a freshly built base model for one training method and return what will train.

    lora: adapters on `targets`, everything else frozen; full: every parameter trains;
    head: only the model's `head_paths` train (a linear-probe baseline).
    """
    check(method in METHODS, "method", method, f"one of {METHODS}")
    if method == "lora":
        return add_lora(model, targets, r, alpha, **lora_options)
    model.set_trainable(method == "full")
    if method == "head":
        for path in model.head_paths:
            parent, leaf = _parent(model, path)
            getattr(parent, leaf).set_trainable(True)
        return list(model.head_paths)
    return linear_paths(model)
