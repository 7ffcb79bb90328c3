"""Batch inference over a zarr image stack: the fastconv-infer command on
Dask's threaded scheduler and on a local distributed cluster, against a
plain in-memory loop; and each worker's peak memory against the chunk size.

    pip install ".[dask]"
    python -m benchmarks.bench_dask                       # 60,000 Fashion-MNIST images
    python -m benchmarks.bench_dask --model lenet5 --chunks 1000 4000 10000

The in-memory loop is what a user writes without Dask: the whole stack
read into one array, then the model's forward in batches of the size that
runs fastest (the command's --batch, timed first), on fastconv's default
threads. The command runs as a user runs it
(its main(), progress bar off), reading and writing zarr; the cluster is
started before the clock, as a user's would be. Runs alternate, best of
--repeats.
"""
import argparse
import contextlib
import os
import tempfile
import time

import numpy as np


def stack(folder, n, chunk):
    """(n, 28, 28) uint8 images as zarr: Fashion-MNIST's training set where
    it is installed (tiled to n), else noise."""
    import zarr
    from fastconv import data
    try:
        images = (data.load("fashion", download_missing=False, progress=False)[0][:, 0] * 255).round()
    except data.DatasetNotFound:
        images = np.random.default_rng(0).random((60_000, 28, 28)) * 255
    images = np.resize(images.astype(np.uint8), (n, 28, 28))
    path = os.path.join(folder, f"images-{chunk}.zarr")
    zarr.create_array(path, shape=images.shape, chunks=(chunk, 28, 28), dtype="uint8", overwrite=True)[:] = images
    return path


def in_memory(model, path, batch):
    import zarr
    from fastconv import Tensor, no_grad
    images = zarr.open_array(path)[:]
    labels = np.empty(len(images), np.int64)
    model.eval()
    with no_grad():
        for i in range(0, len(images), batch):
            x = (images[i:i + batch].astype(np.float32) / 255.0)[:, None]
            labels[i:i + batch] = model(Tensor(x)).data.argmax(axis=1)
    return labels


def forward_batches(model, sizes, repeats):
    """Images per second of the eval forward against the images per call,
    in-memory, best of runs alternated over the sizes: where
    fastconv-infer's --batch default comes from."""
    from fastconv import Tensor, no_grad
    x = np.random.default_rng(0).random((max(sizes), 1, 28, 28), np.float32)
    model.eval()
    best = dict.fromkeys(sizes, float("inf"))
    for _ in range(repeats + 1):
        for size in sizes:
            start = time.perf_counter()
            with no_grad():
                for i in range(0, len(x), size):
                    model(Tensor(x[i:i + size]))
            best[size] = min(best[size], time.perf_counter() - start)
    print("\n| images per forward call | images/s |\n|---|---|")
    for size, seconds in best.items():
        print(f"| {size} | {len(x) / seconds:,.0f} |")


def command(checkpoint, path, out, model_name, *extra):
    from fastconv import infer
    with contextlib.redirect_stdout(open(os.devnull, "w")):
        rc = infer.main([checkpoint, path, out, "--model", model_name, "--overwrite", "--no-progress", *extra])
    assert rc == 0


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak():
    """Restart this process's peak-RSS mark (VmHWM). Not ru_maxrss: Linux
    carries that across exec, so a worker would report its launcher's peak."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["tutorial", "lenet5"], default="tutorial")
    p.add_argument("--images", type=int, default=60_000)
    p.add_argument("--chunk", type=int, default=10_000, help="images per chunk for the throughput runs")
    p.add_argument("--chunks", type=int, nargs="*", default=[1000, 4000, 10_000], help="chunk sizes for memory")
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()

    import distributed
    import fastconv
    from fastconv import infer, models, nn

    folder = tempfile.mkdtemp(prefix="fastconv-bench-dask-")
    nn.manual_seed(0)
    model = models.MODELS[args.model]()
    checkpoint = os.path.join(folder, "model.npz")
    model.save(checkpoint)
    path, out = stack(folder, args.images, args.chunk), os.path.join(folder, "labels.zarr")
    n, cores = args.images, len(os.sched_getaffinity(0))
    print(f"fastconv {fastconv.__version__}, {args.model}, {n} images in chunks of {args.chunk}, "
          f"{cores} cores, fastconv threads {fastconv.get_num_threads()}")
    forward_batches(model, [32, 64, infer.BATCH, 256, 1000, 4000], args.repeats)

    with distributed.LocalCluster(n_workers=cores, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        runs = {
            "in-memory loop": lambda: in_memory(model, path, infer.BATCH),
            "fastconv-infer, threads": lambda: command(checkpoint, path, out, args.model),
            f"fastconv-infer, cluster ({cores} procs x 1 thread)":
                lambda: command(checkpoint, path, out, args.model, "--scheduler", cluster.scheduler_address),
        }
        best = {name: float("inf") for name in runs}
        for _ in range(args.repeats):
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                best[name] = min(best[name], time.perf_counter() - start)
    base = n / best["in-memory loop"]
    print("\n| run | seconds | images/s | vs in-memory |\n|---|---|---|---|")
    for name, seconds in best.items():
        print(f"| {name} | {seconds:.1f} | {n / seconds:,.0f} | {n / seconds / base:.0%} |")

    # Memory: a fresh cluster per run; each worker's peak RSS during the
    # job, over its RSS before it (the interpreter, NumPy, Dask, fastconv;
    # the model is loaded during the job, so it counts). Each chunk size
    # runs with the command's forward batch and with the whole chunk in one
    # forward call (--batch CHUNK), which is what the memory would be
    # without batching.
    model_bytes = sum(v.nbytes for v in model.state_dict().values())

    def one_forward(size):
        """Peak over start of one eval forward of `size` images, in a worker."""
        def run():
            from fastconv import Tensor, no_grad
            m = models.MODELS[args.model]()
            m.eval()
            x = np.zeros((size, 1, 28, 28), np.float32)
            _reset_peak()
            start = _rss()
            with no_grad():
                m(Tensor(x))
            return _peak() - start
        return run

    def worker_peak(path, *extra, probe=None):
        with distributed.LocalCluster(n_workers=cores, threads_per_worker=1, processes=True, host="127.0.0.1",
                                      dashboard_address=None) as cluster, distributed.Client(cluster) as client:
            if probe is not None:
                return max(client.run(probe).values())
            client.run(lambda: __import__("fastconv.dask"))
            client.run(_reset_peak)
            before = client.run(_rss)
            command(checkpoint, path, out, args.model, "--scheduler", cluster.scheduler_address, *extra)
            peaks = client.run(_peak)
            return max(peaks[w] - before[w] for w in peaks)

    forward = worker_peak(None, probe=one_forward(infer.BATCH))
    print(f"\nmodel parameters {model_bytes / 1e6:.1f} MB; one forward of {infer.BATCH} images alone, "
          f"peak over start {forward / 1e6:.0f} MB\n"
          f"| chunk (images) | chunk uint8 MB | chunk float32 MB | worker peak, --batch {infer.BATCH} MB "
          "| worker peak, whole chunk per call MB | (peak - model - one forward) / float32 chunk "
          "| peak / (4 x float32 chunk + model) |\n"
          "|---|---|---|---|---|---|---|")
    for chunk in args.chunks:
        path = stack(folder, args.images, chunk)
        batched = worker_peak(path)
        whole = worker_peak(path, "--batch", str(chunk))
        chunk_mb = chunk * 28 * 28 * 4 / 1e6
        rest = (batched - model_bytes - forward) / 1e6 / chunk_mb
        bound = 4 * chunk_mb + model_bytes / 1e6  # the target: under 4x the chunk plus the model
        print(f"| {chunk} | {chunk_mb / 4:.1f} | {chunk_mb:.1f} | {batched / 1e6:.0f} | {whole / 1e6:.0f} "
              f"| {rest:.1f}x | {batched / 1e6 / bound:.2f} |")

if __name__ == "__main__":
    main()
