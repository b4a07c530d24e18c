"""Character-level language modelling: a model trained on English prose
(The Devil's Dictionary) is adapted to Shakespeare. Measured in bits per
character on held-out Shakespeare; text can be sampled from either model.
"""
from __future__ import annotations

import numpy as np

from .. import datasets
from ..layers import softmax
from ..models import CharLM
from .base import Task, fit_base, rounded_state
from .bases import load_or_train

# Lower-cased text over a small fixed alphabet shared by both corpora.
ALPHABET = "\n !'(),-.:;?abcdefghijklmnopqrstuvwxyz"
VAL_FRACTION = 0.1
VAL_ROWS = 2048  # evenly spaced validation windows: cheap, representative, all used by the trainer


def encode(text: str) -> np.ndarray:
    """Characters -> ids; upper case folds to lower, other characters become spaces."""
    table = np.full(256, ALPHABET.index(" "), dtype=np.uint8)
    for i, ch in enumerate(ALPHABET):
        table[ord(ch)] = i
        table[ord(ch.upper())] = i
    return table[np.frombuffer(text.encode("ascii", "replace"), dtype=np.uint8)]


def decode(ids) -> str:
    return "".join(ALPHABET[i] for i in ids)


def windows(ids: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (context characters, next character) pair, as a read-only view (no copy)."""
    x = np.lib.stride_tricks.sliding_window_view(ids[:-1], context)
    return x, ids[context:].astype(np.int64)


def base_key(c) -> str:
    return f"text-c{c.txt_context}-e{c.txt_embed}-h{c.txt_hidden}"


def _new_model(c, dtype, rng=None) -> CharLM:
    return CharLM(len(ALPHABET), c.txt_context, c.txt_embed, [c.txt_hidden], rng=rng, dtype=dtype)


def split(ids: np.ndarray, context: int):
    """(train windows, evenly spaced validation windows): the last 10% of a text is held out."""
    cut = int(len(ids) * (1 - VAL_FRACTION))
    x_val, y_val = windows(ids[cut:], context)
    rows = np.unique(np.linspace(0, len(y_val) - 1, VAL_ROWS).astype(int))
    return windows(ids[:cut], context), (np.ascontiguousarray(x_val[rows]), y_val[rows])


def train_base(c) -> dict[str, np.ndarray]:
    """The base character model, trained on the first 90% of the English prose."""
    (x, y), _ = split(encode(datasets.load_text("prose")), c.txt_context)
    model = _new_model(c, np.float64, np.random.default_rng(0))
    fit_base(model, "cross_entropy", x, y, steps=3000, lr=3e-3, batch_size=256)
    return rounded_state(model)


def build(c) -> Task:
    dtype = np.dtype(c.dtype)
    state = load_or_train(base_key(c), lambda: train_base(c))
    ids = encode(datasets.load_text("shakespeare"))
    (x_train, y_train), (x_val, y_val) = split(ids, c.txt_context)
    _, source_val = split(encode(datasets.load_text("prose")), c.txt_context)

    def build_model():
        model = _new_model(c, dtype)
        model.load_state_dict(state)
        return model

    return Task(
        modality="text", build_model=build_model, x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
        loss="cross_entropy", metric="bpc", targets=("fc1", "fc2"),
        description="A character model trained on English prose (The Devil's Dictionary), adapted to Shakespeare.",
        extras={"alphabet": ALPHABET, "prompt": decode(x_val[0]), "source_val": source_val},
    )


def sample(model: CharLM, prompt: str, length: int, *, temperature: float = 0.8, seed: int = 0) -> str:
    """Continue `prompt` by `length` characters, drawing each from softmax(logits / temperature)."""
    if not temperature > 0:
        raise ValueError(f"temperature={temperature!r} is not allowed: temperature must be > 0.")
    rng = np.random.default_rng(seed)
    context = model.context
    ids = list(encode(prompt.rjust(context)[-context:] if len(prompt) < context else prompt))
    was_training = model.training
    model.eval()
    for _ in range(length):
        logits = model.forward(np.asarray(ids[-context:])[None, :])[0]
        p = softmax(logits.astype(np.float64) / temperature)
        ids.append(int(rng.choice(len(p), p=p)))
    model.train(was_training)
    return prompt + decode(ids[-length:])
