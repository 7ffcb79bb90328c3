"""IDX parsing, the loaders' search path, and downloads without a network."""
import gzip
import hashlib
import io
import urllib.error

import numpy as np
import pytest

from fastconv import data
from fastconv.mnist import main


def idx_bytes(array, type_code=0x08):
    array = np.asarray(array)
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def test_parse_idx_types_and_shapes():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(data.parse_idx(idx_bytes(images)), images)
    floats = np.array([1.5, -2.0], dtype=np.float32)
    assert np.array_equal(data.parse_idx(idx_bytes(floats, 0x0D)), floats)
    ints = np.array([[1, -70000]], dtype=np.int32)
    assert np.array_equal(data.parse_idx(idx_bytes(ints, 0x0C)), ints)


@pytest.mark.parametrize("raw, words", [
    (b"", ["bad magic"]),
    (b"\x01\x00\x08\x01", ["bad magic"]),
    (b"\x00\x00\x07\x01", ["bad magic"]),
    (b"\x00\x00\x08\x02\x00\x00", ["truncated IDX header"]),
    (idx_bytes(np.zeros((4, 4), np.uint8))[:-3], ["truncated", "(4, 4)"]),
    (idx_bytes(np.zeros(3, np.uint8)) + b"x", ["trailing"]),
])
def test_corrupt_idx_names_the_file(tmp_path, raw, words):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(raw)
    with pytest.raises(ValueError) as info:
        data.read_idx(path)
    assert str(path) in str(info.value) and all(w in str(info.value) for w in words)


def test_read_idx_gzip_and_corrupt_gzip(tmp_path):
    labels = np.array([3, 1, 4], np.uint8)
    (tmp_path / "l.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    assert np.array_equal(data.read_idx(tmp_path / "l.gz"), labels)
    (tmp_path / "broken.gz").write_bytes(gzip.compress(idx_bytes(labels))[:-6])
    with pytest.raises(ValueError, match="broken.gz"):
        data.read_idx(tmp_path / "broken.gz")


def write_dataset(folder, n_train=20, n_test=10, gz=True):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
              "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8)}
    for key, stem in data.FILES.items():
        raw = idx_bytes(arrays[key])
        (folder / (stem + (".gz" if gz else ""))).write_bytes(gzip.compress(raw) if gz else raw)
    return arrays


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No real cache, no $FASTCONV_DATA, no system folder: only what a test makes."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FASTCONV_DATA", raising=False)
    monkeypatch.setitem(data.DATASETS["fashion"], "system", [])
    return tmp_path


def test_load_from_data_dir_raw_and_env(isolated, monkeypatch):
    arrays = write_dataset(isolated / "d", gz=False)
    x, y, tx, ty = data.load("mnist", isolated / "d", download_missing=False)
    assert x.shape == (20, 1, 28, 28) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert np.array_equal(y, arrays["train_labels"]) and y.dtype == np.int64 and tx.shape == (10, 1, 28, 28)
    write_dataset(isolated / "env" / "fashion")
    monkeypatch.setenv("FASTCONV_DATA", str(isolated / "env"))
    assert data.load("fashion", download_missing=False)[0].shape == (20, 1, 28, 28)


def test_download_from_a_local_file_url_verifies_md5(isolated, monkeypatch):
    mirror = isolated / "mirror"
    write_dataset(mirror)
    md5 = {k: hashlib.md5((mirror / (s + ".gz")).read_bytes()).hexdigest() for k, s in data.FILES.items()}
    monkeypatch.setitem(data.DATASETS["mnist"], "mirrors", [mirror.as_uri() + "/"])
    monkeypatch.setitem(data.DATASETS["mnist"], "md5", md5)
    x, y, _, _ = data.load("mnist", progress=False)
    assert x.shape == (20, 1, 28, 28)
    assert (data.cache_dir("mnist") / "train-images-idx3-ubyte.gz").is_file()


def test_download_rejects_a_wrong_checksum(tmp_path):
    class FakeResponse(io.BytesIO):
        headers = {"Content-Length": "5"}

    with pytest.raises(ValueError, match="MD5"):
        data.download("http://example.invalid/f.gz", tmp_path / "f.gz", "0" * 32,
                      opener=lambda url: FakeResponse(b"hello"), progress=False)
    assert list(tmp_path.iterdir()) == [], "a failed download must leave nothing behind"
    good = hashlib.md5(b"hello").hexdigest()
    data.download("http://example.invalid/f.gz", tmp_path / "f.gz", good,
                  opener=lambda url: FakeResponse(b"hello"), progress=False)
    assert (tmp_path / "f.gz").read_bytes() == b"hello"


def test_offline_and_missing_exits_2_with_instructions(isolated, monkeypatch, capsys):
    def offline(url):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(data.urllib.request, "urlopen", offline)
    monkeypatch.setattr(data.load, "__defaults__", (None, True, offline, False))
    assert main(["--dataset", "fashion"]) == 2
    err = capsys.readouterr().err
    assert "apt-get install dataset-fashion-mnist" in err and "--data-dir" in err and "Traceback" not in err


def test_batches_cover_the_data_once():
    x, y = np.arange(10), np.arange(10) * 2
    seen = np.concatenate([bx for bx, by in data.batches(x, y, 3, rng=np.random.default_rng(0))])
    assert sorted(seen) == list(range(10)) and not np.array_equal(seen, np.arange(10))
    assert [len(b) for b, _ in data.batches(x, y, 3, shuffle=False, drop_last=True)] == [3, 3, 3]
    assert all(np.array_equal(by, bx * 2) for bx, by in data.batches(x, y, 4))


@pytest.mark.parametrize("failure", [OSError("connection reset"), KeyboardInterrupt()], ids=["error", "interrupt"])
def test_a_download_failing_mid_read_leaves_nothing_behind(tmp_path, failure):
    class Breaks(io.BytesIO):
        headers = {"Content-Length": "10"}

        def read(self, n=-1):
            if self.tell():
                raise failure
            return super().read(3)

    with pytest.raises(type(failure)):
        data.download("http://example.invalid/f.gz", tmp_path / "f.gz", "0" * 32,
                      opener=lambda url: Breaks(b"0123456789"), progress=False)
    assert list(tmp_path.iterdir()) == [], "a failed download must leave nothing behind"


def test_random_crop_shifts_each_image_within_its_padding():
    rng = np.random.default_rng(0)
    images = rng.random((64, 2, 6, 7)).astype(np.float32)
    out = data.random_crop(images, np.random.default_rng(1), padding=2)
    assert out.shape == images.shape and out.dtype == images.dtype
    seen = set()
    for img, crop in zip(images, out):
        padded = np.pad(img, ((0, 0), (2, 2), (2, 2)))
        matches = [(dy, dx) for dy in range(5) for dx in range(5)
                   if np.array_equal(padded[:, dy:dy + 6, dx:dx + 7], crop)]
        assert matches, "a crop that is no shift of its image"
        seen.add(matches[0])
    assert len(seen) > 10  # offsets drawn, not fixed
    assert np.array_equal(data.random_crop(images, np.random.default_rng(1), 0), images)


def test_random_flip_mirrors_about_half_and_the_transform_is_seeded():
    images = np.random.default_rng(0).random((200, 1, 4, 5))
    out = data.random_flip(images, np.random.default_rng(2))
    flipped = [np.array_equal(o, i[..., ::-1]) for o, i in zip(out, images)]
    kept = [np.array_equal(o, i) for o, i in zip(out, images)]
    assert all(f or k for f, k in zip(flipped, kept)) and 60 < sum(flipped) < 140
    labels = np.arange(200)
    runs = [list(data.batches(images, labels, 32, rng=np.random.default_rng(5), transform=data.augment(1)))
            for _ in range(2)]
    for (xa, ya), (xb, yb) in zip(*runs):
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    with pytest.raises(ValueError, match="random_crop: padding"):
        data.random_crop(images, np.random.default_rng(0), -1)
    with pytest.raises(ValueError, match=r"random_crop: images must be 4-D .* \(200, 4, 5\)"):
        data.random_crop(images[:, 0], np.random.default_rng(0), 1)
