"""Image classification under a domain shift.

An MLP is trained on the source domain (upright digits, or MNIST digits), then
frozen; the target domain is the same images rotated or mirrored (or
Fashion-MNIST clothes for an MNIST base). LoRA adapts the hidden layers.
Splits are fixed: 80% of the images train (the base on the source version, the
adapter on the target version), 20% are held out for validation in both.
"""
from __future__ import annotations

import numpy as np

from .. import datasets
from ..models import MLP
from .base import Task, fit_base, rounded_state
from .bases import load_or_train

SPLIT_SEED = 0
VAL_FRACTION = 0.2
CLASS_COUNT = 10


def rotate(images: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate (n, h, w) images about their centre, bilinear, zero outside (counter-clockwise)."""
    n, h, w = images.shape
    theta = np.deg2rad(degrees)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    # inverse map: where in the source each output pixel comes from
    sy = cy + (yy - cy) * np.cos(theta) - (xx - cx) * np.sin(theta)
    sx = cx + (yy - cy) * np.sin(theta) + (xx - cx) * np.cos(theta)
    y0, x0 = np.floor(sy).astype(int), np.floor(sx).astype(int)
    fy, fx = sy - y0, sx - x0
    out = np.zeros(images.shape, dtype=float)
    for dy, dx, weight in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)),
                           (1, 1, fy * fx)):
        yi, xi = y0 + dy, x0 + dx
        inside = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
        out[:, inside] += weight[inside] * images[:, yi[inside], xi[inside]]
    return out


def shift_images(images: np.ndarray, shift: str, angle: float) -> np.ndarray:
    """The target domain of [0, 1] images."""
    if shift == "rotate":
        return rotate(images, angle)
    if shift == "mirror":
        return images[:, :, ::-1]
    return images


def _split(n: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_val = int(round(n * VAL_FRACTION))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _load(name: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    data = {"digits": datasets.load_digits, "mnist": datasets.load_mnist_5k,
            "fashion": datasets.load_fashion_2k}[name]()
    images = data.images.astype(float) / (16.0 if name == "digits" else 255.0)
    return images, data.labels.astype(np.int64), data.class_names


def base_key(c) -> str:
    return f"image-{c.img_dataset}-h{c.img_hidden}"


def train_base(c) -> dict[str, np.ndarray]:
    """The base MLP, trained on the source domain's training split (80%)."""
    images, labels, _ = _load(c.img_dataset)
    train_idx, _ = _split(len(images))
    x = images[train_idx].reshape(len(train_idx), -1)
    model = MLP([x.shape[1], c.img_hidden, c.img_hidden, CLASS_COUNT], rng=np.random.default_rng(0))
    fit_base(model, "cross_entropy", x, labels[train_idx], steps=1500, lr=3e-3, batch_size=128)
    return rounded_state(model)


def build(c) -> Task:
    dtype = np.dtype(c.dtype)
    images, labels, class_names = _load(c.img_dataset)
    train_idx, val_idx = _split(len(images))
    state = load_or_train(base_key(c), lambda: train_base(c))
    source_val = (images[val_idx].reshape(len(val_idx), -1).astype(dtype), labels[val_idx])
    if c.img_shift == "fashion":  # the target is another dataset, with its own split and classes
        images, labels, target_names = _load("fashion")
        t_train, t_val = _split(len(images))
        target = images
    else:
        target_names, t_train, t_val = class_names, train_idx, val_idx
        target = shift_images(images, c.img_shift, c.img_angle)
    d = images[0].size
    flat = target.reshape(len(target), -1).astype(dtype)

    def build_model():
        model = MLP([d, c.img_hidden, c.img_hidden, CLASS_COUNT], dtype=dtype)
        model.load_state_dict(state)
        model.fc1.need_input_grad = False  # the input is data
        return model

    what = {"rotate": f"rotated by {c.img_angle:g} degrees", "mirror": "mirrored", "fashion": "Fashion-MNIST clothes"}[c.img_shift]
    return Task(
        modality="image", build_model=build_model,
        x_train=flat[t_train], y_train=labels[t_train], x_val=flat[t_val], y_val=labels[t_val],
        loss="cross_entropy", metric="accuracy", targets=("fc1", "fc2"),
        description=f"An MLP trained on {c.img_dataset} images, adapted to the same task {what}.",
        extras={"class_names": target_names, "image_shape": images.shape[1:],
                "source_val": source_val, "val_images": target[t_val]},
    )
