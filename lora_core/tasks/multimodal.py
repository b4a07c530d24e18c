"""Text + image: emoji pictures with their names, and the original random-feature toy.

Emoji: which of 8 categories (animals, food, travel, ...) is this emoji? The name
and the picture each carry part of the answer. The base is trained on 80% of the
emoji as they are, then frozen. The target domain is a new "dialect" of both
modalities: pictures turned a quarter turn and names written backwards (either,
or both). One adapter per modality branch; switching one off shows which
modality's adapter matters for the shift.

Toy (the `seed` preset): text 4 + image 4 features U(-1, 1), the target is the
features themselves plus tiny noise, no base (W0 = 0), late fusion, rank 1 per
modality. Each rank-1 branch can reproduce one of its 4 input directions, so
the best possible loss is (4 - r) / 4 of the variance 1/3: 0.25 at r = 1.
"""
from __future__ import annotations

import numpy as np

from .. import datasets
from ..models import MultimodalModel, lora_layers
from ..theory import two_branch_rank_loss
from .base import Task, fit_base, rounded_state
from .bases import load_or_train

CATEGORIES = ("Smileys & Emotion", "People & Body", "Animals & Nature", "Food & Drink", "Travel & Places",
              "Activities", "Objects", "Symbols")
TEXT_FEATURES = 256  # hashed character trigrams of the name
PATCH = 4  # attention fusion: the 16x16 picture as a 4x4 grid of 4x4 patches
VAL_FRACTION = 0.2

# The toy, exactly as the original.
TOY_FEATURES, TOY_SAMPLES, TOY_NOISE, TOY_NOISE_RANGE = 4, 100, 0.05, 0.1


def name_features(names) -> np.ndarray:
    """Bag of hashed character trigrams per name (unit length): shared pieces of words share features."""
    out = np.zeros((len(names), TEXT_FEATURES))
    for row, name in enumerate(names):
        padded = f" {name} "
        for i in range(len(padded) - 2):
            h = 0
            for ch in padded[i:i + 3]:  # a fixed polynomial hash: Python's hash() changes per process
                h = (h * 131 + ord(ch)) % 1_000_003
            out[row, h % TEXT_FEATURES] += 1.0
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def picture_features(images: np.ndarray, fusion: str) -> np.ndarray:
    """Ink in [0, 1] on a 16x16 grid: flat (n, 256), or (n, 16 patches, 16) for attention."""
    ink = 1.0 - images.astype(float) / 255.0
    n = len(ink)
    small = ink.reshape(n, 16, 2, 16, 2).mean(axis=(2, 4))
    if fusion != "attention":
        return small.reshape(n, -1)
    grid = 16 // PATCH
    return small.reshape(n, grid, PATCH, grid, PATCH).transpose(0, 1, 3, 2, 4).reshape(n, grid * grid, PATCH * PATCH)


def shifted(names, images, shift: str) -> tuple[list[str], np.ndarray]:
    """The target domain: names written backwards and/or pictures turned 90 degrees counter-clockwise."""
    if shift in ("text", "both"):
        names = [" ".join(word[::-1] for word in name.split()) for name in names]
    if shift in ("image", "both"):
        images = np.ascontiguousarray(np.rot90(images, 1, axes=(1, 2)))
    return list(names), images


def _new_model(c, d_image: int, dtype, rng=None) -> MultimodalModel:
    return MultimodalModel(TEXT_FEATURES, d_image, len(CATEGORIES), fusion=c.mm_fusion, hidden=c.mm_hidden, rng=rng,
                           dtype=dtype)


def base_key(c) -> str:
    return f"emoji-{c.mm_fusion}-h{c.mm_hidden}"


def build(c) -> Task:
    return _build_toy(c) if c.mm_dataset == "toy" else _build_emoji(c)


def _emoji_split():
    """The emoji, their category labels, and the fixed validation / training split."""
    emoji = datasets.load_emoji()
    labels = np.array([CATEGORIES.index(name) for name in emoji.categories])
    order = np.random.default_rng(0).permutation(len(labels))
    n_val = int(round(len(labels) * VAL_FRACTION))
    return emoji, labels, np.sort(order[:n_val]), np.sort(order[n_val:])


def train_base(c) -> dict[str, np.ndarray]:
    """The base, trained on the source domain's training emoji (never on validation ones)."""
    emoji, labels, _, train = _emoji_split()
    x = (name_features([emoji.names[i] for i in train]), picture_features(emoji.images[train], c.mm_fusion))
    model = _new_model(c, x[1].shape[-1], np.float64, np.random.default_rng(0))
    fit_base(model, "cross_entropy", x, labels[train], steps=1500, lr=3e-3, batch_size=128)
    return rounded_state(model)


def _build_emoji(c) -> Task:
    dtype = np.dtype(c.dtype)
    emoji, labels, val, train = _emoji_split()

    def features(names, images):
        return name_features(names).astype(dtype), picture_features(images, c.mm_fusion).astype(dtype)

    source = features(emoji.names, emoji.images)
    target = features(*shifted(emoji.names, emoji.images, c.mm_shift))
    d_image = source[1].shape[-1]

    state = load_or_train(base_key(c), lambda: train_base(c))

    def build_model():
        model = _new_model(c, d_image, dtype)
        model.load_state_dict(state)
        model.text.fc1.need_input_grad = model.image.fc1.need_input_grad = False  # inputs are data
        return model

    what = {"both": "pictures turned and names written backwards", "image": "pictures turned a quarter turn",
            "text": "names written backwards"}[c.mm_shift]
    return Task(
        modality="multimodal", build_model=build_model,
        x_train=tuple(a[train] for a in target), y_train=labels[train],
        x_val=tuple(a[val] for a in target), y_val=labels[val],
        loss="cross_entropy", metric="accuracy", targets=("text.fc1", "image.fc1"),
        description=(f"Name the category of an emoji from its picture and name: a {c.mm_fusion}-fusion model "
                     f"trained on emoji as they are, adapted to {what}."),
        extras={"class_names": CATEGORIES, "val_index": val, "names": emoji.names, "images": emoji.images,
                "source_val": (tuple(a[val] for a in source), labels[val])},
    )


def toy_data(rng, n: int) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    x_text = rng.uniform(-1, 1, (n, TOY_FEATURES))
    x_image = rng.uniform(-1, 1, (n, TOY_FEATURES))
    noise = TOY_NOISE * rng.uniform(-TOY_NOISE_RANGE, TOY_NOISE_RANGE, (n, 2 * TOY_FEATURES))
    return (x_text, x_image), np.concatenate([x_text, x_image], axis=1) + noise


def _build_toy(c) -> Task:
    dtype = np.dtype(c.dtype)
    rng = np.random.default_rng([c.seed, 0])
    x_train, y_train = toy_data(rng, TOY_SAMPLES)
    x_val, y_val = toy_data(rng, TOY_SAMPLES)
    d_out = 2 * TOY_FEATURES
    noise_var = (TOY_NOISE * TOY_NOISE_RANGE) ** 2 / 3  # variance of 0.05 * U(-0.1, 0.1)

    def build_model():
        model = MultimodalModel(TOY_FEATURES, TOY_FEATURES, d_out, fusion="late", hidden=None, bias=False,
                                dtype=dtype)
        model.set_trainable(False)
        for p in model.parameters():  # no base: W0 = 0, only the adapters act
            p.value[...] = 0.0
        model.text.proj.need_input_grad = model.image.proj.need_input_grad = False
        return model

    def floor(rank: int | None) -> dict:
        rank = TOY_FEATURES if rank is None else min(rank, TOY_FEATURES)
        # each branch misses (4 - r) of its 4 directions of variance 1/3; 2 branches over 8 outputs
        population = 2 * (TOY_FEATURES - rank) * (1 / 3) / d_out
        return {"population": population + noise_var, "noise": noise_var,
                "train_optimum": two_branch_rank_loss(*x_train, y_train, rank)}

    return Task(
        modality="multimodal", build_model=build_model,
        x_train=tuple(a.astype(dtype) for a in x_train), y_train=y_train.astype(dtype),
        x_val=tuple(a.astype(dtype) for a in x_val), y_val=y_val.astype(dtype),
        loss="mse", metric=None, targets=("text.proj", "image.proj"),
        description="The original toy: reproduce 4 text + 4 image features through a rank-1 adapter per modality.",
        extras={}, floor=floor,
    )


def branch_contributions(task: Task, model) -> dict[str, dict]:
    """Validation scores with both adapters, each alone, and neither: what each modality's adapter adds."""
    layers = lora_layers(model)
    scores = {}
    for label, keep in (("both", ("text", "image")), ("text only", ("text",)), ("image only", ("image",)),
                        ("neither (base)", ())):
        for path, layer in layers:
            layer.active = path.split(".")[0] in keep
        scores[label] = task.evaluate(model, task.x_val, task.y_val)
    for _, layer in layers:
        layer.active = True
    return scores
