"""fastconv's GEMM (csrc/gemm.c through _C.gemm): transposes, column bias and
fused ReLU against the float64 oracle at and around every tile and block
edge, on every ISA this CPU runs, both dtypes, 1 and N threads."""
import numpy as np
import pytest

from fastconv import _C
from conftest import assert_close, _nan_empty
import reference as ref

DTYPES = [np.float32, np.float64]


def rand(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# Sizes just below, at and above the 6-row tile, the 16/32 (f32) and 8/16
# (f64) column panels, and the KC = 256 depth block.
MNK = [(1, 1, 1), (5, 15, 7), (6, 16, 8), (7, 17, 9), (12, 32, 255), (13, 33, 256), (19, 47, 257),
       (40, 5, 300), (3, 70, 513)]
# Past the row blocks (MC = 192 f32, 96 f64) and column blocks (NC = 3072
# f32, 1536 f64), on one thread: threads split rows or columns first, so
# with more each thread's share could stay inside one block.
BLOCK_EDGES = [(97, 7, 5), (193, 9, 300), (385, 2, 3), (2, 1537, 3), (3, 3073, 17)]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("trans_a,trans_b", [(0, 0), (1, 0), (0, 1), (1, 1)], ids=["nn", "tn", "nt", "tt"])
@pytest.mark.parametrize("mnk", MNK + BLOCK_EDGES, ids=[f"m{m}_n{n}_k{k}" for m, n, k in MNK + BLOCK_EDGES])
def test_gemm_transposes_bias_relu(mnk, trans_a, trans_b, dtype, isa, threads):
    m, n, k = mnk
    if mnk in BLOCK_EDGES:
        threads(1)
    a = rand((k, m) if trans_a else (m, k), dtype, 1)
    b = rand((n, k) if trans_b else (k, n), dtype, 2)
    bias = rand(n, dtype, 3)
    expected = ref.matmul(a.T if trans_a else a, b.T if trans_b else b) + bias
    for activation in (None, "relu"):
        c = _nan_empty((m, n), dtype)
        _C.gemm(m, n, k, a.reshape(-1), trans_a, b.reshape(-1), trans_b, bias, activation, c.reshape(-1))
        assert_close(c, np.maximum(expected, 0) if activation else expected, dtype)


