"""fastconv.dask on the real engine: Dask's threaded scheduler and a
distributed cluster of two worker processes on loopback, against the
in-memory calls. Skips when the [dask] extra is missing."""
import itertools
import os

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
import dask  # noqa: E402

import fastconv  # noqa: E402
import fastconv.dask as fd  # noqa: E402
from conftest import assert_close  # noqa: E402
from fastconv import models, nn, no_grad, Tensor  # noqa: E402

rng = np.random.default_rng(0)
X = rng.standard_normal((3, 4, 13, 11))
W = rng.standard_normal((5, 4, 3, 3))
B = rng.standard_normal(5)


def compute(y):
    return y.compute(scheduler="threads")


@pytest.fixture
def no_computing():
    """Building a graph must compute nothing: any scheduler call fails."""
    def refuse(*args, **kwargs):
        raise AssertionError("a Dask computation ran while the graph was built")
    with dask.config.set(scheduler=refuse):
        yield


# --- Chunk sizes, kernels, strides, dilations and padding forms ----------------

CHUNKS = [(3, 4, 13, 11), (1, 4, 5, 4), (2, 4, 1, 3), (3, 4, (2, 7, 4), (6, 1, 4))]
CONVS = [dict(kernel=k, stride=s, dilation=d, padding=p)
         for k, s, d, p in itertools.product((1, 3, 4), (1, 2, 3), (1, 2), (0, 2, "same", "valid", ((0, 3), (2, 1))))
         if not (p == "same" and s > 1)]


@pytest.mark.parametrize("chunks", CHUNKS, ids=["one_chunk", "small", "rows_of_one", "uneven"])
@pytest.mark.parametrize("conv", CONVS, ids=lambda c: "k{kernel}_s{stride}_d{dilation}_p{padding}".format(**c))
def test_tiled_conv2d_equals_the_in_memory_call(chunks, conv, no_computing):
    k = conv["kernel"]
    options = {key: v for key, v in conv.items() if key != "kernel"}
    w = W[:, :, :k, :k].copy()
    try:
        expected = fastconv.conv2d(X, w, B, **options)
    except ValueError:
        with pytest.raises(ValueError, match="conv2d"):
            fd.conv2d(da.from_array(X, chunks=chunks), w, B, **options)
        return
    y = fd.conv2d(da.from_array(X, chunks=chunks), w, B, **options)
    assert y.shape == expected.shape and y.dtype == expected.dtype
    assert_close(y.compute(scheduler="sync"), expected, np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("options", [dict(groups=2), dict(activation="relu", padding=1), dict(stride=(2, 1), padding=(1, 2))],
                         ids=["groups", "relu", "per_axis"])
def test_tiled_conv2d_groups_activation_dtypes(dtype, options):
    x = X.astype(dtype)
    w = (rng.standard_normal((6, 2, 3, 3)) if "groups" in options else W).astype(dtype)
    expected = fastconv.conv2d(x, w, **options)
    y = fd.conv2d(da.from_array(x, chunks=(2, 4, 4, 5)), w, **options)
    assert y.dtype == expected.dtype == dtype
    assert_close(compute(y), expected, dtype)


POOLS = [dict(kernel_size=k, stride=s, padding=p, ceil_mode=c)
         for k, s, p, c in itertools.product((1, 2, 3), (1, 2, 3), (0, 1), (False, True)) if p <= k // 2]


@pytest.mark.parametrize("chunks", [CHUNKS[1], CHUNKS[3]], ids=["small", "uneven"])
@pytest.mark.parametrize("pool", POOLS, ids=lambda p: "k{kernel_size}_s{stride}_p{padding}_ceil{ceil_mode:d}".format(**p))
def test_tiled_pooling_equals_the_in_memory_call(chunks, pool):
    x = da.from_array(X, chunks=chunks)
    lazy, expected = [], []
    for dilation in (1, 2):
        try:
            expected.append(fastconv.max_pool2d(X, **pool, dilation=dilation))
        except ValueError:
            continue
        lazy.append(fd.max_pool2d(x, **pool, dilation=dilation))
    for extra in (dict(), dict(count_include_pad=False), dict(divisor_override=5)):
        expected.append(fastconv.avg_pool2d(X, **pool, **extra))
        lazy.append(fd.avg_pool2d(x, **pool, **extra))
    for got, want in zip(dask.compute(*lazy, scheduler="sync"), expected):
        assert_close(got, want, np.float64)


def test_every_tile_reads_input_even_with_a_stride_longer_than_a_chunk():
    """Chunks of 1 row, stride 3, padding past the window: tiles that would
    hold only padding join a neighbour."""
    x = np.arange(2 * 1 * 7 * 7, dtype=np.float64).reshape(2, 1, 7, 7)
    w = np.ones((1, 1, 2, 2))
    for padding in (((0, 4), (4, 0)), 3):
        expected = fastconv.conv2d(x, w, stride=3, padding=padding)
        assert_close(compute(fd.conv2d(da.from_array(x, chunks=(1, 1, 1, 2)), w, stride=3, padding=padding)),
                     expected, np.float64)


# --- Along the batch axis --------------------------------------------------------

def test_batch_chunks_are_one_call_each_and_declared(no_computing):
    x = da.from_array(X, chunks=(1, 4, 13, 11))
    y = fd.conv2d(x, W, B, padding=1)
    assert y.chunks == ((1, 1, 1), (5,), (13,), (11,))
    assert isinstance(y._meta, np.ndarray) and y.dtype == np.float64
    z = fd.map_batch(fastconv.conv_transpose2d, x, W.transpose(1, 0, 2, 3), stride=2)
    assert z.chunks[0] == (1, 1, 1) and z.shape == fastconv.conv_transpose2d(X, W.transpose(1, 0, 2, 3), stride=2).shape
    with dask.config.set(scheduler="threads"):
        assert_close(y.compute(), fastconv.conv2d(X, W, B, padding=1), np.float64)
        assert_close(z.compute(), fastconv.conv_transpose2d(X, W.transpose(1, 0, 2, 3), stride=2), np.float64)
        assert_close(fd.map_batch(fastconv.adaptive_avg_pool2d, x, (2, 3)).compute(),
                     fastconv.adaptive_avg_pool2d(X, (2, 3)), np.float64)


def test_batch_wise_conv1d_transposed_conv_and_adaptive_pooling():
    x = da.from_array(X, chunks=(1, 2, 5, 11))
    wt = rng.standard_normal((4, 3, 3, 3))
    cases = [
        (fd.conv_transpose2d(x, wt, B[:3], stride=2, padding=1, output_padding=1),
         fastconv.conv_transpose2d(X, wt, B[:3], stride=2, padding=1, output_padding=1)),
        (fd.adaptive_avg_pool2d(x, (4, 3)), fastconv.adaptive_avg_pool2d(X, (4, 3))),
        (fd.conv1d(x[:, :, 0], W[:, :, 0], B, stride=2, padding="valid"),
         fastconv.conv1d(X[:, :, 0], W[:, :, 0], B, stride=2, padding="valid")),
    ]
    for lazy, expected in cases:
        assert lazy.chunks[0] == (1, 1, 1)
        assert_close(compute(lazy), expected, np.float64)
    with pytest.raises(ValueError, match=r"fastconv.dask.conv1d: input must be 3-D \(N, C, L\)"):
        fd.conv1d(x, W[:, :, 0])
    with pytest.raises(ValueError, match=r"conv_transpose2d: .*output_padding"):
        fd.conv_transpose2d(x, wt, stride=2, output_padding=2)


def _model():
    nn.manual_seed(1)
    model = models.LeNet5()
    model.eval()
    return model


def _images(n=40):
    return np.random.default_rng(2).random((n, 1, 28, 28), dtype=np.float32)


def test_predict_matches_the_in_memory_forward(no_computing):
    model, images = _model(), _images()
    with no_grad():
        expected = model(Tensor(images)).data
    y = fd.predict(model, da.from_array(images, chunks=(7, 1, 28, 28)))
    assert y.shape == (40, 10) and y.chunks[0] == (7, 7, 7, 7, 7, 5) and y.dtype == np.float32
    with dask.config.set(scheduler="threads"):
        assert_close(y.compute(), expected, np.float32)


@pytest.mark.parametrize("batch", [1, 3, 7, 100])
def test_predict_in_batches_matches_the_whole_chunk(batch, no_computing):
    model, images = _model(), _images()
    with no_grad():
        expected = model(Tensor(images)).data
    y = fd.predict(model, da.from_array(images, chunks=(7, 1, 28, 28)), batch=batch)
    assert y.shape == (40, 10) and y.dtype == np.float32
    with dask.config.set(scheduler="threads"):
        assert_close(y.compute(), expected, np.float32)
    empty = fd.predict(model, da.from_array(images[:0], chunks=(7, 1, 28, 28)), batch=batch)
    assert empty.compute(scheduler="sync").shape == (0, 10)


def test_in_batches_calls_once_per_batch_and_once_for_nothing():
    calls = []

    def double(part):
        calls.append(len(part))
        return 2 * part
    got = fd.in_batches(double, np.arange(10.0), 4)
    assert np.array_equal(got, 2 * np.arange(10.0)) and calls == [4, 4, 2]
    calls.clear()
    assert fd.in_batches(double, np.zeros((0, 3)), 4).shape == (0, 3) and calls == [0]


@pytest.mark.parametrize("batch, error, message", [
    (0, ValueError, "batch must be >= 1, got 0"), (True, TypeError, "batch must be an int, got True"),
    (2.5, TypeError, "batch must be an int, got float 2.5")])
def test_predict_refuses_a_bad_batch(batch, error, message):
    with pytest.raises(error, match=r"fastconv.dask.predict: " + message):
        fd.predict(_model(), da.from_array(_images(), chunks=7), batch=batch)


@pytest.mark.skipif(not fastconv.build_info()["openmp"], reason="a build without OpenMP runs one thread")
def test_threaded_workers_share_the_budget(threads):
    """Four scheduler threads, each wanting every core: the threads fastconv
    holds at once never exceed the budget."""
    threads(2)
    x = da.from_array(np.repeat(X, 8, axis=0), chunks=(2, 4, 13, 11))
    fastconv._C.thread_peak(reset=True)
    got = fd.conv2d(x, W, padding=1).compute(scheduler="threads", num_workers=4)
    assert 1 <= fastconv._C.thread_peak() <= 2
    assert_close(got, fastconv.conv2d(np.repeat(X, 8, axis=0), W, padding=1), np.float64)


def test_errors_name_the_function_when_the_graph_is_built():
    x = da.from_array(X, chunks=2)
    with pytest.raises(ValueError, match=r"conv2d: input has 4 channels but weight expects 3"):
        fd.conv2d(x, W[:, :3])
    with pytest.raises(ValueError, match=r"max_pool2d: padding 2 must be at most half"):
        fd.max_pool2d(x, 3, padding=2)
    with pytest.raises(TypeError, match=r"fastconv.dask.conv2d: input must be a dask.array.Array, got ndarray"):
        fd.conv2d(X, W)
    with pytest.raises(ValueError, match=r"fastconv.dask.avg_pool2d: input must be 4-D"):
        fd.avg_pool2d(x[0], 2)
    with pytest.raises(TypeError, match=r"fastconv.dask.predict: input must be a dask.array.Array"):
        fd.predict(_model(), _images())


# --- A distributed cluster, zarr and the command ----------------------------------

distributed = pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes of one thread each on loopback, 300 MB each."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, memory_limit="300MB") as c, distributed.Client(c) as client:
        yield c, client


def test_cluster_results_equal_the_in_memory_computation(cluster):
    _, client = cluster
    model, images = _model(), _images()
    with no_grad():
        expected = model(Tensor(images)).data
    got = client.compute(fd.predict(model, da.from_array(images, chunks=(10, 1, 28, 28)))).result()
    assert_close(got, expected, np.float32)
    y = fd.conv2d(da.from_array(X, chunks=(2, 4, 5, 6)), W, B, stride=2, padding="valid", dilation=2)
    assert_close(client.compute(y).result(), fastconv.conv2d(X, W, B, stride=2, dilation=2), np.float64)


def test_cluster_workers_reuse_freed_blocks_once_a_task_has_run(cluster):
    """Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_ set, which
    froze glibc's mmap threshold: a fastconv task restores the adaptive
    thresholds' limits in its worker (fastconv._malloc)."""
    _, client = cluster
    client.compute(fd.predict(_model(), da.from_array(_images(), chunks=(10, 1, 28, 28)))).result()
    import ctypes.util
    glibc = "libc.so" in (ctypes.util.find_library("c") or "")

    def probe():
        import os
        from fastconv import _malloc
        return "MALLOC_TRIM_THRESHOLD_" in os.environ, _malloc.keep_freed_blocks()
    for env_set, changed in client.run(probe).values():
        assert env_set and changed == glibc


def test_keep_freed_blocks_changes_nothing_where_the_variable_is_unset():
    import subprocess
    import sys
    code = "from fastconv import _malloc; print(_malloc.keep_freed_blocks())"
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd="/")
    assert out.stdout.strip() == "False", out.stderr


def _peak_rss_probes():
    """(reset, read) of a process's peak RSS (VmHWM; ru_maxrss would carry
    the launching process's peak across exec). Made inside a function so
    that they travel to workers by value, not as names of this module."""
    def reset():
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")

    def read():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    return reset, read


def _stack(path, n, chunk=500):
    images = (np.random.default_rng(3).random((n, 28, 28)) * 255).astype(np.uint8)
    z = zarr.create_array(str(path), shape=images.shape, chunks=(chunk, 28, 28), dtype="uint8")
    z[:] = images
    return images


def _expected_labels(model, images):
    with no_grad():
        return model(Tensor((images.astype(np.float32) / 255)[:, None])).data.argmax(axis=1)


def test_infer_command_on_the_threaded_scheduler(tmp_path, capsys):
    from fastconv import infer
    model = _model()
    model.save(tmp_path / "lenet.npz")
    images = _stack(tmp_path / "in.zarr", 1200, chunk=250)
    rc = infer.main([str(tmp_path / "lenet.npz"), str(tmp_path / "in.zarr"), str(tmp_path / "out.zarr"),
                     "--model", "lenet5", "--no-progress"])
    assert rc == 0 and "wrote 1200 labels" in capsys.readouterr().out
    labels = zarr.open_array(str(tmp_path / "out.zarr"))[:]
    assert labels.dtype == np.int64 and np.array_equal(labels, _expected_labels(model, images))
    rc = infer.main([str(tmp_path / "lenet.npz"), str(tmp_path / "in.zarr"), str(tmp_path / "logits.zarr"),
                     "--model", "lenet5", "--logits", "--chunk", "100", "--no-progress"])
    assert rc == 0 and zarr.open_array(str(tmp_path / "logits.zarr")).shape == (1200, 10)


def test_infer_command_forwards_in_batches(tmp_path, capsys):
    from fastconv import infer
    model = _model()
    model.save(tmp_path / "lenet.npz")
    images = _stack(tmp_path / "in.zarr", 300, chunk=130)
    rc = infer.main([str(tmp_path / "lenet.npz"), str(tmp_path / "in.zarr"), str(tmp_path / "out.zarr"),
                     "--model", "lenet5", "--batch", "17", "--no-progress"])
    assert rc == 0
    assert np.array_equal(zarr.open_array(str(tmp_path / "out.zarr"))[:], _expected_labels(model, images))
    with pytest.raises(SystemExit):
        infer.main([str(tmp_path / "lenet.npz"), str(tmp_path / "in.zarr"), str(tmp_path / "o.zarr"), "--batch", "0"])
    assert "--batch must be at least 1, got 0" in capsys.readouterr().err


def test_a_chunk_holds_one_batch_of_activations_not_the_chunks(tmp_path):
    """LeNet-5 over a chunk of 4,000 images (3 MB of uint8): its first
    layer's output alone for the whole chunk would be 75 MB; in batches of
    128 the chunk's peak grows by a few MB."""
    from fastconv import infer
    reset_peak, peak = _peak_rss_probes()
    model = _model()
    model.save(tmp_path / "lenet.npz")
    images = (np.random.default_rng(5).random((4000, 28, 28)) * 255).astype(np.uint8)
    checkpoint = str(tmp_path / "lenet.npz")
    infer.labels_of(images[:200], "lenet5", checkpoint)  # the model loaded, the kernels' scratch warm
    reset_peak()
    start = peak()
    labels = infer.labels_of(images, "lenet5", checkpoint, batch=128)
    assert peak() - start < 25e6
    assert np.array_equal(labels, _expected_labels(model, images))


def test_infer_command_refuses_a_bad_checkpoint(tmp_path, capsys):
    from fastconv import infer
    (tmp_path / "bad.npz").write_bytes(b"not a checkpoint")
    _stack(tmp_path / "in.zarr", 10)
    assert infer.main([str(tmp_path / "bad.npz"), str(tmp_path / "in.zarr"), str(tmp_path / "out.zarr")]) == 2
    assert "bad.npz is not a readable checkpoint" in capsys.readouterr().err


def test_a_stack_larger_than_worker_memory_streams_through_the_cluster(tmp_path, cluster):
    """About 630 MB of float32 images, more than both workers together may
    hold (300 MB each): only a few chunks are ever in memory."""
    c, client = cluster
    reset_peak, peak = _peak_rss_probes()
    client.run(reset_peak)
    from fastconv import infer
    model = _model()
    model.save(tmp_path / "lenet.npz")
    n = 200_000
    images = _stack(tmp_path / "in.zarr", n, chunk=2500)
    assert n * 28 * 28 * 4 > 2 * 300e6
    rc = infer.main([str(tmp_path / "lenet.npz"), str(tmp_path / "in.zarr"), str(tmp_path / "out.zarr"),
                     "--model", "lenet5", "--scheduler", c.scheduler_address, "--no-progress"])
    assert rc == 0
    labels = zarr.open_array(str(tmp_path / "out.zarr"))[:]
    sample = np.random.default_rng(4).choice(n, 2000, replace=False)
    assert np.array_equal(labels[sample], _expected_labels(model, images[sample]))
    # both workers lived through it, each under its limit at its peak
    peaks = client.run(peak)
    assert len(peaks) == 2 and max(peaks.values()) < 300e6
