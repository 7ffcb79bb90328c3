"""A pure-NumPy oracle for every fastconv operator.

Written for clarity, never speed; imports only NumPy and shares no code with
the package. Padding is always explicit ((top, bottom), (left, right)).
"""
import math

import numpy as np


def same_padding(size, k, stride, dilation):
    """TensorFlow's 'same' rule for one dimension -> (before, after)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _taps(xp, i, j, stride, dilation, out_h, out_w):
    """The (N, C, out_h, out_w) view of padded input xp seen by kernel tap (i, j)."""
    h0, w0 = i * dilation[0], j * dilation[1]
    return xp[:, :, h0:h0 + stride[0] * (out_h - 1) + 1:stride[0],
              w0:w0 + stride[1] * (out_w - 1) + 1:stride[1]]


def conv2d(x, w, b, stride, padding, dilation, groups):
    (pt, pb), (pl, pr) = padding
    n, c_in, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    out_h = (h + pt + pb - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    out_w = (wd + pl + pr - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    y = np.zeros((n, c_out, out_h, out_w))
    og = c_out // groups
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                patch = _taps(xp, i, j, stride, dilation, out_h, out_w)[:, g * cg:(g + 1) * cg]
                y[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, w[g * og:(g + 1) * og, :, i, j])
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
    return y


def conv2d_grad_input(gy, x_shape, w, stride, padding, dilation, groups):
    (pt, pb), (pl, pr) = padding
    n, c_in, h, wd = x_shape
    c_out, cg, kh, kw = w.shape
    out_h, out_w = gy.shape[2:]
    gxp = np.zeros((n, c_in, h + pt + pb, wd + pl + pr))
    og = c_out // groups
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                view = _taps(gxp, i, j, stride, dilation, out_h, out_w)[:, g * cg:(g + 1) * cg]
                view += np.einsum("nohw,oc->nchw", gy[:, g * og:(g + 1) * og], w[g * og:(g + 1) * og, :, i, j])
    return gxp[:, :, pt:pt + h, pl:pl + wd]


def conv2d_grad_weight(gy, x, w_shape, stride, padding, dilation, groups):
    (pt, pb), (pl, pr) = padding
    c_out, cg, kh, kw = w_shape
    out_h, out_w = gy.shape[2:]
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    gw = np.zeros(w_shape)
    og = c_out // groups
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                patch = _taps(xp, i, j, stride, dilation, out_h, out_w)[:, g * cg:(g + 1) * cg]
                gw[g * og:(g + 1) * og, :, i, j] = np.einsum("nohw,nchw->oc", gy[:, g * og:(g + 1) * og], patch)
    return gw


def conv_transpose2d(x, w, b, stride, padding, output_padding, groups, dilation):
    """The scatter definition: each input pixel adds w times itself to a window."""
    n, c_in, h, wd = x.shape
    _, og, kh, kw = w.shape
    out_h = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + output_padding[0] + 1
    out_w = (wd - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + output_padding[1] + 1
    big = np.zeros((n, og * groups, out_h + 2 * padding[0] + kh * dilation[0], out_w + 2 * padding[1] + kw * dilation[1]))
    ig = c_in // groups
    for ih in range(h):
        for iw in range(wd):
            for i in range(kh):
                for j in range(kw):
                    oh, ow = ih * stride[0] + i * dilation[0], iw * stride[1] + j * dilation[1]
                    for g in range(groups):
                        big[:, g * og:(g + 1) * og, oh, ow] += x[:, g * ig:(g + 1) * ig, ih, iw] @ w[g * ig:(g + 1) * ig, :, i, j]
    y = big[:, :, padding[0]:padding[0] + out_h, padding[1]:padding[1] + out_w]
    if b is not None:
        y = y + np.asarray(b, np.float64)[None, :, None, None]
    return y


def unfold(x, kernel, dilation, padding, stride):
    n, c, h, w = x.shape
    out_h = (h + 2 * padding[0] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    out_w = (w + 2 * padding[1] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    cols = np.zeros((n, c * kernel[0] * kernel[1], out_h * out_w))
    for ci in range(c):
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                row = (ci * kernel[0] + i) * kernel[1] + j
                for oh in range(out_h):
                    for ow in range(out_w):
                        ih = oh * stride[0] - padding[0] + i * dilation[0]
                        iw = ow * stride[1] - padding[1] + j * dilation[1]
                        if 0 <= ih < h and 0 <= iw < w:
                            cols[:, row, oh * out_w + ow] = x[:, ci, ih, iw]
    return cols


def fold(cols, output_size, kernel, dilation, padding, stride):
    n, rows, _ = cols.shape
    h, w = output_size
    c = rows // (kernel[0] * kernel[1])
    out_w = (w + 2 * padding[1] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    x = np.zeros((n, c, h, w))
    for ci in range(c):
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                row = (ci * kernel[0] + i) * kernel[1] + j
                for p in range(cols.shape[2]):
                    ih = p // out_w * stride[0] - padding[0] + i * dilation[0]
                    iw = p % out_w * stride[1] - padding[1] + j * dilation[1]
                    if 0 <= ih < h and 0 <= iw < w:
                        x[:, ci, ih, iw] += cols[:, row, p]
    return x


def pool_out_size(size, k, stride, pad, dilation, ceil_mode):
    """PyTorch's pooling output size."""
    span = dilation * (k - 1) + 1
    num = size + 2 * pad - span
    out = (-(-num // stride) if ceil_mode else num // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def max_pool2d(x, kernel, stride, padding, dilation, ceil_mode):
    """-> (out, indices): the first maximum of each window wins; NaN wins."""
    n, c, h, w = x.shape
    out_h = pool_out_size(h, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    out_w = pool_out_size(w, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    y = np.full((n, c, out_h, out_w), -np.inf)
    idx = np.zeros((n, c, out_h, out_w), np.int64)
    for a in range(n):
        for ch in range(c):
            for oh in range(out_h):
                for ow in range(out_w):
                    best, arg = None, None
                    for i in range(kernel[0]):
                        for j in range(kernel[1]):
                            ih = oh * stride[0] - padding[0] + i * dilation[0]
                            iw = ow * stride[1] - padding[1] + j * dilation[1]
                            if not (0 <= ih < h and 0 <= iw < w):
                                continue
                            v = x[a, ch, ih, iw]
                            if best is None or v > best or np.isnan(v):
                                best, arg = v, ih * w + iw
                    y[a, ch, oh, ow], idx[a, ch, oh, ow] = best, arg
    return y, idx


def avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    n, c, h, w = x.shape
    out_h = pool_out_size(h, kernel[0], stride[0], padding[0], 1, ceil_mode)
    out_w = pool_out_size(w, kernel[1], stride[1], padding[1], 1, ceil_mode)
    y = np.zeros((n, c, out_h, out_w))
    for oh in range(out_h):
        for ow in range(out_w):
            h0, w0 = oh * stride[0] - padding[0], ow * stride[1] - padding[1]
            h1, w1 = min(h0 + kernel[0], h + padding[0]), min(w0 + kernel[1], w + padding[1])
            padded_count = (h1 - h0) * (w1 - w0)
            hs, ws, he, we = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
            total = x[:, :, hs:he, ws:we].sum(axis=(2, 3))
            if divisor_override:
                div = divisor_override
            else:
                div = padded_count if count_include_pad else (he - hs) * (we - ws)
            y[:, :, oh, ow] = total / div
    return y


def adaptive_avg_pool2d(x, output_size):
    n, c, h, w = x.shape
    oh_n, ow_n = output_size
    y = np.zeros((n, c, oh_n, ow_n))
    for oh in range(oh_n):
        for ow in range(ow_n):
            h0, h1 = (oh * h) // oh_n, -(-((oh + 1) * h) // oh_n)
            w0, w1 = (ow * w) // ow_n, -(-((ow + 1) * w) // ow_n)
            y[:, :, oh, ow] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return y


def max_pool2d_backward(gy, indices, input_shape):
    """Each output's gradient added to the input cell its index names."""
    n, c, h, w = input_shape
    gx = np.zeros((n, c, h * w))
    for a in range(n):
        for ch in range(c):
            for g, i in zip(np.asarray(gy, np.float64)[a, ch].ravel(), indices[a, ch].ravel()):
                gx[a, ch, i] += g
    return gx.reshape(input_shape)


def avg_pool2d_backward(gy, input_shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """Each output's gradient over its divisor, spread over the input cells its window covers."""
    n, c, h, w = input_shape
    gy = np.asarray(gy, np.float64)
    gx = np.zeros(input_shape)
    for oh in range(gy.shape[2]):
        for ow in range(gy.shape[3]):
            h0, w0 = oh * stride[0] - padding[0], ow * stride[1] - padding[1]
            h1, w1 = min(h0 + kernel[0], h + padding[0]), min(w0 + kernel[1], w + padding[1])
            hs, ws, he, we = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
            if divisor_override:
                div = divisor_override
            else:
                div = (h1 - h0) * (w1 - w0) if count_include_pad else (he - hs) * (we - ws)
            gx[:, :, hs:he, ws:we] += (gy[:, :, oh, ow] / div)[:, :, None, None]
    return gx


def adaptive_avg_pool2d_backward(gy, input_shape):
    n, c, h, w = input_shape
    gy = np.asarray(gy, np.float64)
    oh_n, ow_n = gy.shape[2:]
    gx = np.zeros(input_shape)
    for oh in range(oh_n):
        for ow in range(ow_n):
            h0, h1 = (oh * h) // oh_n, -(-((oh + 1) * h) // oh_n)
            w0, w1 = (ow * w) // ow_n, -(-((ow + 1) * w) // ow_n)
            gx[:, :, h0:h1, w0:w1] += (gy[:, :, oh, ow] / ((h1 - h0) * (w1 - w0)))[:, :, None, None]
    return gx


def matmul(a, b):
    """a (m, k) @ b (k, n) in float64, one output at a time."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    out = np.zeros((a.shape[0], b.shape[1]))
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            out[i, j] = math.fsum(a[i, :] * b[:, j])
    return out


def linear(x, w, b):
    """x (..., in) w^T + b, as torch.nn.functional.linear."""
    rows = np.asarray(x, np.float64).reshape(-1, w.shape[1])
    y = matmul(rows, np.asarray(w, np.float64).T)
    if b is not None:
        y += np.asarray(b, np.float64)
    return y.reshape(x.shape[:-1] + (w.shape[0],))


def cross_entropy(logits, labels):
    """(mean -log softmax(logits)[label], d loss / d logits), row by row."""
    z = np.asarray(logits, np.float64)
    loss, grad = 0.0, np.zeros_like(z)
    for r, (row, k) in enumerate(zip(z, labels)):
        p = np.exp(row - row.max())
        p /= p.sum()
        loss -= math.log(p[k])
        grad[r] = p
        grad[r, k] -= 1
    return loss / len(z), grad / len(z)


def max_pool2d_padded(x, kernel, stride, pads):
    """Max pooling over x padded explicitly by pads ((top, bottom), (left,
    right)) with -inf, every window inside: TensorFlow's 'same' and 'valid'."""
    (t, b), (l, r) = pads
    xp = np.pad(np.asarray(x, np.float64), ((0, 0), (0, 0), (t, b), (l, r)), constant_values=-np.inf)
    out_h = (xp.shape[2] - kernel[0]) // stride[0] + 1
    out_w = (xp.shape[3] - kernel[1]) // stride[1] + 1
    y = np.full(x.shape[:2] + (out_h, out_w), -np.inf)
    for oh in range(out_h):
        for ow in range(out_w):
            h0, w0 = oh * stride[0], ow * stride[1]
            y[:, :, oh, ow] = xp[:, :, h0:h0 + kernel[0], w0:w0 + kernel[1]].max(axis=(2, 3))
    return y


def avg_pool2d_padded(x, kernel, stride, pads):
    """Average pooling over x padded explicitly, the padding never counted
    (TensorFlow's rule)."""
    (t, b), (l, r) = pads
    x = np.asarray(x, np.float64)
    xp = np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)))
    ones = np.pad(np.ones(x.shape[2:]), ((t, b), (l, r)))
    out_h = (xp.shape[2] - kernel[0]) // stride[0] + 1
    out_w = (xp.shape[3] - kernel[1]) // stride[1] + 1
    y = np.zeros(x.shape[:2] + (out_h, out_w))
    for oh in range(out_h):
        for ow in range(out_w):
            hs, ws = slice(oh * stride[0], oh * stride[0] + kernel[0]), slice(ow * stride[1], ow * stride[1] + kernel[1])
            y[:, :, oh, ow] = xp[:, :, hs, ws].sum(axis=(2, 3)) / ones[hs, ws].sum()
    return y


def adaptive_max_pool2d(x, output_size):
    """-> (out, indices), PyTorch's windows; the first maximum wins."""
    n, c, h, w = x.shape
    oh_n, ow_n = output_size
    y = np.zeros((n, c, oh_n, ow_n))
    idx = np.zeros((n, c, oh_n, ow_n), np.int64)
    for a in range(n):
        for ch in range(c):
            for oh in range(oh_n):
                for ow in range(ow_n):
                    h0, h1 = (oh * h) // oh_n, -(-((oh + 1) * h) // oh_n)
                    w0, w1 = (ow * w) // ow_n, -(-((ow + 1) * w) // ow_n)
                    best = None
                    for ih in range(h0, h1):
                        for iw in range(w0, w1):
                            if best is None or x[a, ch, ih, iw] > best:
                                best, arg = x[a, ch, ih, iw], ih * w + iw
                    y[a, ch, oh, ow], idx[a, ch, oh, ow] = best, arg
    return y, idx


def local_response_norm(x, size, alpha, beta, k):
    """PyTorch's LRN, channel by channel: x / (k + alpha/size * sum of squares)^beta."""
    x = np.asarray(x, np.float64)
    c = x.shape[1]
    y = np.zeros_like(x)
    for ch in range(c):
        lo, hi = max(ch - size // 2, 0), min(ch + (size - 1) // 2, c - 1)
        sq = sum(x[:, j] ** 2 for j in range(lo, hi + 1))
        y[:, ch] = x[:, ch] / (k + alpha / size * sq) ** beta
    return y


def embedding(indices, weight):
    out = np.zeros(np.shape(indices) + (weight.shape[1],))
    for pos in np.ndindex(*np.shape(indices)):
        out[pos] = weight[indices[pos]]
    return out


def embedding_backward(gy, indices, num_embeddings, padding_idx):
    gw = np.zeros((num_embeddings, gy.shape[-1]))
    for pos in np.ndindex(*np.shape(indices)):
        if indices[pos] != padding_idx:
            gw[indices[pos]] += gy[pos]
    return gw
