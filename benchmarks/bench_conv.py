"""conv2d forward, grad-input and grad-weight on the shapes of real models:
fastconv (each algorithm) beside PyTorch (CPU) and NumPy im2col + matmul,
timed interleaved in one run.

GFLOP/s = 2 * N * C_out * H_out * W_out * (C_in / groups) * kH * kW / time,
the same count for every pass. "% peak" is against the machine's GEMM
ceiling measured in the same run: the better of NumPy's BLAS and
fastconv's GEMM at 2048^3.

    python -m benchmarks.bench_conv [--threads 2] [--dtype float32] [--only mnist_c2]
"""
import numpy as np

import fastconv
from benchmarks import common
from benchmarks.shapes import CONV

PASSES = ("forward", "grad_input", "grad_weight")


def candidates(shape, dtype, pass_, algorithms, torch):
    n, ci, h, w, co, k, s, p, d, g = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, ci, h, w)).astype(dtype)
    wt = rng.standard_normal((co, ci // g, k, k)).astype(dtype)
    y = fastconv.conv2d(x, wt, stride=s, padding=p, dilation=d, groups=g)
    gy = rng.standard_normal(y.shape).astype(dtype)
    kw = dict(stride=s, padding=p, dilation=d, groups=g)
    need = {"grad_input": ("input",), "grad_weight": ("weight",)}.get(pass_)
    out = {}
    for algo in algorithms:
        if pass_ == "forward":
            out[algo] = lambda a=algo: fastconv.conv2d(x, wt, **kw, algorithm=a)
        else:
            out[algo] = lambda a=algo: fastconv.conv2d_backward(gy, x, wt, **kw, needs=need, algorithm=a)
    if torch is not None:
        tx, tw, tgy = torch.from_numpy(x), torch.from_numpy(wt), torch.from_numpy(gy)
        if pass_ == "forward":
            out["torch"] = lambda: torch.nn.functional.conv2d(tx, tw, None, s, p, d, g)
        else:
            mask = [pass_ == "grad_input", pass_ == "grad_weight", False]
            out["torch"] = lambda: torch.ops.aten.convolution_backward(
                tgy, tx, tw, None, [s, s], [p, p], [d, d], False, [0, 0], g, mask)
    if pass_ == "forward":
        out["numpy"] = lambda: common.numpy_conv2d(x, wt, s, p, d, g)
    elif pass_ == "grad_input":
        out["numpy"] = lambda: common.numpy_conv2d_grad_input(gy, x.shape, wt, s, p, d, g)
    else:
        out["numpy"] = lambda: common.numpy_conv2d_grad_weight(gy, x, wt.shape, s, p, d, g)
    return out, 2 * y.size * (ci // g) * k * k


def main():
    ap = common.parser(__doc__.splitlines()[0])
    ap.add_argument("--algorithms", nargs="*", default=["auto", "direct", "gemm"])
    ap.add_argument("--passes", nargs="*", default=list(PASSES))
    args = ap.parse_args()
    threads = common.setup_threads(args.threads)
    torch = common.try_torch()
    dtype = np.dtype(args.dtype)
    ceiling = common.gemm_ceiling(dtype)
    print(f"fastconv {fastconv.build_info()}, {threads} threads, {dtype}; "
          f"torch {'%s' % torch.__version__ if torch else 'not installed'}; "
          f"GEMM ceiling {ceiling:.0f} GFLOP/s\n")
    rows, auto_vs_torch = [], {}
    for name, shape in CONV.items():
        if args.only and name not in args.only:
            continue
        for pass_ in args.passes:
            cands, flops = candidates(shape, dtype, pass_, args.algorithms, torch)
            t = common.interleaved(cands, args.repeats)
            if "torch" in t and "auto" in t:
                auto_vs_torch[name, pass_] = (t["auto"], t["torch"])
            for algo in args.algorithms:
                gf = flops / t[algo] / 1e9
                rows.append([name, pass_, algo, f"{t[algo] * 1e3:.2f}", f"{gf:.1f}", f"{100 * gf / ceiling:.0f}%",
                             f"{t['torch'] / t[algo]:.2f}" if "torch" in t else "-",
                             f"{t['numpy'] / t[algo]:.2f}"])
            if "torch" in t:
                rows.append([name, pass_, "(torch)", f"{t['torch'] * 1e3:.2f}", f"{flops / t['torch'] / 1e9:.1f}",
                             f"{100 * flops / t['torch'] / 1e9 / ceiling:.0f}%", "1.00", f"{t['numpy'] / t['torch']:.2f}"])
    common.table(["shape", "pass", "algorithm", "ms", "GFLOP/s", "% peak", "speedup vs torch", "vs numpy"], rows)
    summarize(auto_vs_torch)


def summarize(times):
    """Geometric mean of fastconv (auto) / torch time over the dense shapes
    (all but depthwise), per pass and for the backward (both gradients)."""
    dense = sorted({name for name, _ in times if name != "depthwise"})
    ratios = {p: [times[n, p][0] / times[n, p][1] for n in dense if (n, p) in times] for p in PASSES}
    both = [n for n in dense if (n, "grad_input") in times and (n, "grad_weight") in times]
    ratios["backward"] = [(times[n, "grad_input"][0] + times[n, "grad_weight"][0]) /
                          (times[n, "grad_input"][1] + times[n, "grad_weight"][1]) for n in both]
    print()
    for p, r in ratios.items():
        if r:
            print(f"{p}: geometric mean fastconv/torch time over {len(r)} dense shapes = "
                  f"{float(np.exp(np.mean(np.log(r)))):.2f}")


if __name__ == "__main__":
    main()
