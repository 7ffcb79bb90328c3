"""A picture of a saved run: GFLOP/s per shape and pass, fastconv beside
PyTorch, each pair marked with fastconv's speedup (PyTorch's time over
fastconv's; above 1 fastconv is faster).

    pytest benchmarks/ --benchmark-only --benchmark-json run.json
    python -m benchmarks.plot run.json [-o run.png]

Needs matplotlib (the bench extra). Convolutions show fastconv's "auto";
pooling, which moves bytes rather than multiplying, is left out."""
import argparse
import json
import os


def pairs(run):
    """[(label, fastconv GFLOP/s, torch GFLOP/s)] in the run's order."""
    by_group = {}
    for bench in run["benchmarks"]:
        info = bench["extra_info"]
        if "gflops" in info and info.get("operation") in ("conv2d", "conv_transpose2d"):
            by_group.setdefault(bench["group"], {})[info["impl"]] = info
    out = []
    for group, impls in by_group.items():
        ours = impls.get("auto") or impls.get("fastconv")
        if ours and "torch" in impls:
            op = "" if ours["operation"] == "conv2d" else "transposed "
            out.append((f"{op}{ours['shape']}\n{ours['pass']}", ours["gflops"], impls["torch"]["gflops"]))
    return out


def plot(run, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = pairs(run)
    if not rows:
        raise SystemExit("plot: the run has no convolution timed beside PyTorch")
    fig, ax = plt.subplots(figsize=(max(8, 0.42 * len(rows)), 5.5))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r[1] for r in rows], 0.4, label="fastconv", color="#1f77b4")
    ax.bar([x + 0.2 for x in xs], [r[2] for r in rows], 0.4, label="PyTorch (CPU)", color="#ff7f0e")
    for x, (_, ours, theirs) in zip(xs, rows):
        ax.annotate(f"{ours / theirs:.2f}x", (x, max(ours, theirs)), ha="center", va="bottom", fontsize=7,
                    color="#2ca02c" if ours >= theirs else "#d62728", xytext=(0, 2), textcoords="offset points")
    ceiling = run.get("fastconv", {}).get("gemm_ceiling_gflops")
    if ceiling:
        ax.axhline(ceiling, color="grey", linestyle="--", linewidth=0.8)
        ax.annotate(f"GEMM ceiling {ceiling:.0f}", (len(rows) - 0.5, ceiling), ha="right", va="bottom", fontsize=8,
                    color="grey")
    ax.set_xticks(list(xs))
    ax.set_xticklabels([r[0] for r in rows], rotation=90, fontsize=7)
    ax.set_ylabel("GFLOP/s (direct-convolution count)")
    threads = run.get("fastconv", {}).get("threads")
    ax.set_title(f"fastconv beside PyTorch{f', {threads} threads' if threads else ''}; "
                 "labels: fastconv's speedup (green: faster)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="a pytest-benchmark JSON file (--benchmark-json or --benchmark-autosave)")
    ap.add_argument("-o", "--output", help="the PNG to write (default: beside the run, .png)")
    args = ap.parse_args(argv)
    with open(args.run) as f:
        run = json.load(f)
    path = args.output or os.path.splitext(args.run)[0] + ".png"
    print(plot(run, path))


if __name__ == "__main__":
    main()
