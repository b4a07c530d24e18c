"""The committed data files and their loaders: shapes, ranges, and content."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lora_core import datasets
from lora_core.datasets import EmojiSet, ImageSet

NPZ_FILES = ("digits.npz", "mnist_5k.npz", "fashion_2k.npz", "emoji.npz")
PRINTABLE = set(map(chr, range(32, 127))) | {"\n"}


def check_image_set(ds: ImageSet, n: int, side: int, max_value: int) -> None:
    assert isinstance(ds, ImageSet)
    assert ds.images.shape == (n, side, side) and ds.images.dtype == np.uint8
    assert ds.labels.shape == (n,) and ds.labels.dtype == np.int64
    assert ds.images.max() == max_value  # the full range is used, not rescaled
    assert ds.labels.min() == 0 and ds.labels.max() == len(ds.class_names) - 1
    assert all(isinstance(name, str) and name for name in ds.class_names)
    assert len(ds) == n


def test_digits():
    ds = datasets.load_digits()
    check_image_set(ds, 1797, 8, 16)
    assert ds.class_names == tuple("0123456789")


def test_digits_are_the_scikit_learn_source_bit_for_bit():
    # sha256 of scikit-learn's digits.csv.gz pixels and labels as built by scripts/build_data.py
    # (checked against the CSV when the data was built); any change to the committed file fails here.
    ds = datasets.load_digits()
    digest = hashlib.sha256(ds.images.tobytes() + ds.labels.astype(np.int64).tobytes()).hexdigest()
    assert digest == "65e5b4619795efb40c1082f4c350c049e4ad552200d369b6ae99e21eef5e72c5"


def test_mnist_5k_is_complete_and_shuffled():
    ds = datasets.load_mnist_5k()
    check_image_set(ds, 5000, 28, 255)
    assert set(np.unique(ds.labels)) == set(range(10))
    # The source is sorted by label; the build shuffles it.
    assert np.any(np.diff(ds.labels) < 0)
    assert len(set(ds.labels[:100].tolist())) == 10


def test_fashion_2k_is_balanced():
    ds = datasets.load_fashion_2k()
    check_image_set(ds, 2000, 28, 255)
    assert ds.class_names == ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                              "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    np.testing.assert_array_equal(np.bincount(ds.labels, minlength=10), [200] * 10)
    assert np.any(np.diff(ds.labels) < 0)  # not grouped by class


def test_fashion_images_are_distinct():
    images = datasets.load_fashion_2k().images.reshape(2000, -1)
    assert len(np.unique(images, axis=0)) == 2000  # drawn without replacement


@pytest.mark.parametrize("name", datasets.TEXTS)
def test_text_is_long_printable_ascii(name):
    text = datasets.load_text(name)
    assert len(text) > 300_000
    assert set(text) <= PRINTABLE
    assert "\n\n\n" not in text  # runs of blank lines collapsed


def test_prose_is_the_dictionary_without_dictd_headers():
    text = datasets.load_text("prose")
    assert text.startswith("ABASEMENT, n.")
    assert "ZOOLOGY, n." in text
    assert "00-database" not in text and "abcdefghijklmnopqrstuvwxyz" not in text


def test_shakespeare_is_plain_text():
    text = datasets.load_text("shakespeare")
    for play in ("Hamlet", "Macbeth", "King Lear"):
        assert f"\n{play}\n" in f"\n{text}"
    assert "\nHAMLET.\n" in text  # speaker lines kept as plain names
    for markup in ("**", "#", "_", "\\"):
        assert markup not in text


def test_unknown_text_is_refused():
    with pytest.raises(ValueError, match="prose"):
        datasets.load_text("moby-dick")


def test_emoji():
    ds = datasets.load_emoji()
    n = len(ds.names)
    assert isinstance(ds, EmojiSet) and n > 1000
    assert ds.images.shape == (n, 32, 32) and ds.images.dtype == np.uint8
    assert len(ds.categories) == n
    assert not {"Flags", "Component"} & set(ds.categories)
    assert all(name and name == name.lower() and set(name) <= PRINTABLE
               for name in ds.names)


def test_emoji_images_are_not_blank():
    darkest = datasets.load_emoji().images.reshape(-1, 32 * 32).min(axis=1)
    # Every crop holds a drawing; the palest (white squares, drawn in light
    # grey) reach 231, and pale yellow ones ~205, so < 200 holds for ~98%.
    assert np.all(darkest < 240)
    assert np.mean(darkest < 200) > 0.97


def test_loaded_arrays_are_read_only():
    ds = datasets.load_digits()
    with pytest.raises(ValueError):
        ds.images[0, 0, 0] = 1


@pytest.mark.parametrize("filename", NPZ_FILES)
def test_npz_loads_without_pickle(filename):
    with np.load(datasets.DATA_DIR / filename, allow_pickle=False) as npz:
        for key in npz.files:
            assert npz[key].dtype != object


def test_data_folder_is_small():
    total = sum(p.stat().st_size for p in datasets.DATA_DIR.rglob("*") if p.is_file())
    assert total < 5 * 1024 * 1024


def test_notice_credits_every_file():
    notice = (datasets.DATA_DIR / "NOTICE").read_text()
    for filename in (*NPZ_FILES, "text/prose.txt.gz", "text/shakespeare.txt.gz"):
        assert filename in notice
    assert "Twemoji by Twitter, Inc and other contributors, CC-BY 4.0" in notice


def test_missing_file_says_how_to_rebuild(tmp_path):
    with pytest.raises(FileNotFoundError, match="scripts/build_data.py"):
        datasets.load_digits(data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="prose.txt.gz"):
        datasets.load_text("prose", data_dir=tmp_path)


def test_data_dir_follows_environment(tmp_path):
    # A fresh interpreter, because DATA_DIR is read once at import.
    root = Path(datasets.__file__).resolve().parent.parent
    env = {**os.environ, "LORA_LAB_DATA": str(tmp_path),
           "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    code = "from lora_core import datasets; print(datasets.DATA_DIR)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert Path(out) == tmp_path
