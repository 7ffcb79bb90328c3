"""Data: the IDX file format (MNIST's), MNIST and Fashion-MNIST loaders, a
shuffling mini-batch iterator, and augmentation (random crops and flips)
as batch transforms it applies.

Loaders look for the four IDX files (gzipped or raw) in, in order: the
`data_dir` argument, $FASTCONV_DATA (or a <name> folder inside it),
~/.cache/fastconv/<name>, and for Fashion-MNIST Debian's
/usr/share/datasets/fashion-mnist (package dataset-fashion-mnist). Missing
files are downloaded into ~/.cache/fastconv/<name> when `download` is true
and the network answers; each download is checked against its MD5.
"""
import contextlib
import gzip
import hashlib
import os
import sys
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

# IDX type codes -> big-endian NumPy dtypes
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(raw, name="<bytes>"):
    """An ndarray from the bytes of an IDX file; errors name `name`."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{name}: not an IDX file (bad magic {raw[:4].hex() or 'empty'})")
    dtype, ndim = np.dtype(_IDX_TYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{name}: truncated IDX header ({len(raw)} bytes, needs {header})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise ValueError(f"{name}: IDX file {what}: {len(raw)} bytes, shape {shape} needs {expected}")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path):
    """Reads an IDX file, gzip-compressed (by content, not name) or raw."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise ValueError(f"{path}: corrupt gzip data ({e})") from None
    return parse_idx(raw, str(path))


FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
         "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}

DATASETS = {
    "mnist": {
        "mirrors": ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"],
        "md5": {"train_images": "f68b3c2dcbeaaa9fbdd348bbdeb94873", "train_labels": "d53e105ee54ea40749a09fcbcd1e9432",
                "test_images": "9fb629c4189551a2d022fa330f9573f3", "test_labels": "ec29112dd5afa0611ce80d1b7f02629c"},
        "system": [],
    },
    "fashion": {
        "mirrors": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        "md5": {"train_images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "train_labels": "25c81989df183df01b3e8a0aad5dffbe",
                "test_images": "bef4ecab320f06d8554ea6380940ec79", "test_labels": "bb300cfdad3c16e7a12a480ee83cd310"},
        "system": ["/usr/share/datasets/fashion-mnist"],
    },
}


class DatasetNotFound(FileNotFoundError):
    """The data set is neither on disk nor downloadable; the message says how to get it."""


def search_dirs(name, data_dir=None):
    dirs = []
    if data_dir:
        dirs.append(Path(data_dir))
    if os.environ.get("FASTCONV_DATA"):
        base = Path(os.environ["FASTCONV_DATA"])
        dirs += [base / name, base]
    dirs.append(cache_dir(name))
    dirs += [Path(d) for d in DATASETS[name]["system"]]
    return dirs


def cache_dir(name):
    return Path.home() / ".cache" / "fastconv" / name


def _find(dirs, stem):
    for d in dirs:
        for candidate in (d / (stem + ".gz"), d / stem):
            if candidate.is_file():
                return candidate
    return None


def download(url, dest, md5, opener=urllib.request.urlopen, progress=True):
    """Fetches url to dest through a temporary file beside it, renamed into
    place only once its MD5 matches: a failure of any kind (an error
    mid-read, an interrupt, a mismatch, which raises ValueError) leaves
    nothing behind."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.md5()
    tmp = tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part", delete=False)
    try:
        with opener(url) as response, tmp:
            total = int(response.headers.get("Content-Length", 0) or 0) if hasattr(response, "headers") else 0
            bar = _progress(total, f"{dest.name}") if progress else None
            try:
                while chunk := response.read(1 << 16):
                    digest.update(chunk)
                    tmp.write(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
        if digest.hexdigest() != md5:
            raise ValueError(f"download: {url} has MD5 {digest.hexdigest()}, expected {md5}")
        os.replace(tmp.name, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp.name)
        raise
    return dest


def _progress(total, desc):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total or None, desc=desc, unit="B", unit_scale=True, file=sys.stderr, leave=False,
                mininterval=0.5, disable=None)


def _how_to_get(name, dirs):
    lines = [f"fastconv: the {name} data set was not found and could not be downloaded.",
             "Looked in: " + ", ".join(str(d) for d in dirs)]
    if name == "fashion":
        lines.append("On Debian or Ubuntu: apt-get install dataset-fashion-mnist")
    lines.append("Or put the four IDX files (" + ", ".join(f + ".gz" for f in FILES.values()) +
                 ") in one of those folders, or pass --data-dir.")
    return "\n".join(lines)


def load(name, data_dir=None, download_missing=True, opener=urllib.request.urlopen, progress=True):
    """(train_images, train_labels, test_images, test_labels): images float32
    (N, 1, 28, 28) in [0, 1], labels int64."""
    if name not in DATASETS:
        raise ValueError(f"load: unknown data set {name!r}; expected one of {tuple(DATASETS)}")
    spec, dirs = DATASETS[name], search_dirs(name, data_dir)
    found = {}
    for key, stem in FILES.items():
        path = _find(dirs, stem)
        if path is None and download_missing:
            for mirror in spec["mirrors"]:
                try:
                    path = download(mirror + stem + ".gz", cache_dir(name) / (stem + ".gz"), spec["md5"][key],
                                    opener=opener, progress=progress)
                    break
                except (OSError, ValueError) as e:  # URLError is an OSError
                    print(f"fastconv: {mirror}: {e}", file=sys.stderr)
        if path is None:
            raise DatasetNotFound(_how_to_get(name, dirs))
        found[key] = read_idx(path)
    for split in ("train", "test"):
        images, labels = found[f"{split}_images"], found[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"load: {name} {split} images {images.shape} and labels {labels.shape} do not match")
    to_images = lambda a: (a.astype(np.float32) / 255.0)[:, None]
    return (to_images(found["train_images"]), found["train_labels"].astype(np.int64),
            to_images(found["test_images"]), found["test_labels"].astype(np.int64))


def batches(x, y, batch_size, shuffle=True, rng=None, drop_last=False, transform=None):
    """Yields (x_batch, y_batch) over the data once, in a fresh random order
    if shuffle. transform(x_batch, rng), for example augment(), rewrites
    each image batch, drawing from the same generator as the order, so a
    seeded rng gives the same batches every run."""
    if batch_size < 1:
        raise ValueError(f"batches: batch_size must be >= 1, got {batch_size}")
    if len(x) != len(y):
        raise ValueError(f"batches: x has {len(x)} items but y has {len(y)}")
    rng = rng if rng is not None else np.random.default_rng()
    order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
    stop = len(x) - len(x) % batch_size if drop_last else len(x)
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        yield (x[idx] if transform is None else transform(x[idx], rng)), y[idx]


# -- augmentation: batch transforms (images (N, C, H, W), rng) -> images -------

def random_crop(images, rng, padding=4):
    """Each image cut at a random offset from itself zero-padded by
    `padding` on every side, keeping its size: shifts of up to `padding`
    pixels (AlexNet's random crops, as CIFAR training pads and crops)."""
    if padding < 0:
        raise ValueError(f"random_crop: padding must be >= 0, got {padding}")
    if np.ndim(images) != 4:
        raise ValueError(f"random_crop: images must be 4-D (N, C, H, W), got shape {np.shape(images)}")
    n, _, h, w = images.shape
    padded = np.pad(images, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (h, w), axis=(2, 3))  # (N, C, dy, dx, H, W)
    dy, dx = rng.integers(0, 2 * padding + 1, n), rng.integers(0, 2 * padding + 1, n)
    return windows[np.arange(n), :, dy, dx]


def random_flip(images, rng, p=0.5):
    """Each image mirrored left to right with probability p."""
    flip = rng.random(len(images)) < p
    out = images.copy()
    out[flip] = images[flip, ..., ::-1]
    return out


def augment(padding=4, flip=True):
    """AlexNet's augmentation as one batch transform for batches():
    random_crop, then random_flip (leave it off for digits, whose mirror
    images are not digits)."""
    def transform(images, rng):
        images = random_crop(images, rng, padding)
        return random_flip(images, rng) if flip else images
    return transform
